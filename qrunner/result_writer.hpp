// result_writer: per-recipient results -> the store, many to one transaction, on the store thread.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <mutex>
#include <vector>

#include "libshared/store/queue_store.hpp"

namespace mxlane::qrunner {

class ResultWriter {
public:
    // Called on the store thread after each commit: how many results it held
    // and the jobs that finished with it.
    using Written = std::function<void(std::size_t, const std::vector<std::uint64_t>&)>;

    ResultWriter(store::QueueStore& store, boost::asio::any_io_executor store_exec, Written on_written);

    // Thread-safe. The result is committed within a few milliseconds, together
    // with whatever else arrived meanwhile (one durable commit for many).
    void add(store::Outcome outcome);
    void add(std::vector<store::Outcome> outcomes);

    // Results added but not yet committed.
    std::size_t pending() const;

private:
    void schedule();   // caller holds mu_
    void write_now();  // on the store thread

    store::QueueStore& store_;
    boost::asio::any_io_executor exec_;
    boost::asio::steady_timer timer_;
    Written on_written_;
    mutable std::mutex mu_;
    std::vector<store::Outcome> pending_;
    bool scheduled_ = false;
};

}  // namespace mxlane::qrunner
