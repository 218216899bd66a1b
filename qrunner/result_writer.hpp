// result_writer: per-recipient results -> the store, many to one transaction, on a thread of its own.
#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "libshared/store/queue_store.hpp"

namespace mxlane::qrunner {

// Backoff after a transient store error (lock contention that outlasted the
// store's retries, a full disk): doubling from first to at most max.
struct ResultBackoff {
    std::chrono::milliseconds first{100}, max{10000};
};

class ResultWriter {
public:
    // Called on the store executor after each commit: how many results left the
    // writer (written, or set aside as unwritable) and the jobs that finished.
    using Written = std::function<void(std::size_t, const std::vector<std::uint64_t>&)>;

    using Backoff = ResultBackoff;

    ResultWriter(store::QueueStore& store, boost::asio::any_io_executor store_exec, Written on_written,
                 Backoff backoff = {});
    ~ResultWriter();
    ResultWriter(const ResultWriter&) = delete;
    ResultWriter& operator=(const ResultWriter&) = delete;

    // Thread-safe. The result is committed as soon as the writer's thread is
    // free, together with whatever else arrived meanwhile (write_nosync: in the
    // store's log, safe from a crash of this process, when the commit returns),
    // on a thread of its own so that no result waits behind a claim.
    void add(store::Outcome outcome);
    void add(std::vector<store::Outcome> outcomes);

    // Results added but not yet committed (those being written included); once
    // it is 0, a task posted to the store executor runs after their on_written.
    std::size_t pending() const;
    // Results that could not be written for a permanent error (a damaged record):
    // each was logged with its job and seq, and its recipient left in flight.
    std::size_t set_aside() const;
    // Write attempts that failed for a transient error.
    std::size_t transient_failures() const;

private:
    void run();  // the writer's thread
    // Writes batch; on a permanent error writes its results one by one and sets
    // the bad ones aside. Returns false on a transient error: `left` then holds
    // what is still to write, in order.
    bool write(std::vector<store::Outcome>& batch, std::vector<std::uint64_t>& finished, std::size_t& done,
               std::vector<store::Outcome>& left);

    store::QueueStore& store_;
    boost::asio::any_io_executor exec_;
    Written on_written_;
    const Backoff backoff_;
    mutable std::mutex mu_;  // guards everything below
    std::condition_variable wake_;
    std::vector<store::Outcome> pending_;
    std::size_t in_write_ = 0;  // results of the batch being written now
    bool stopping_ = false;
    std::chrono::steady_clock::time_point retry_at_{};
    std::chrono::milliseconds delay_{0};  // the current backoff, 0: none
    std::size_t set_aside_ = 0, transient_failures_ = 0;
    std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace mxlane::qrunner
