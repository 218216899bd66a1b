// enqueue: the durable take-over at end of message: job, message and recipients in one commit.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "libshared/store/queue_store.hpp"
#include "milter/message_context.hpp"

namespace mxlane::milter {

// A reason to refuse the message that has its own SMTP reply (452 4.3.1: queue file system full).
class IntakeRefused : public std::runtime_error {
public:
    IntakeRefused(const char* code, const char* dsn, const std::string& why)
        : std::runtime_error(why), code(code), dsn(dsn) {}
    const char* code;
    const char* dsn;
};

// Space that must stay free in queue_directory beyond twice the message: the
// Berkeley DB regions are memory-mapped files, and a file system that fills up
// under them kills the process instead of failing a write (32 MB); room for the
// store's next log file, which takes its whole space when it is created, so that
// the commit which starts one does not fail instead; and a log buffer's worth
// written meanwhile (72 MB in all).
constexpr std::uint64_t kQueueMinFree = 32ULL * 1024 * 1024 + store::kLogFileSpace + store::kLogBufferBytes;

// Throws IntakeRefused when the file system of dir has too little room for a message of `size` bytes.
void check_free_space(const std::string& dir, std::size_t size);

struct Enqueued {
    std::uint64_t job_id = 0;
    std::uint64_t message_id = 0;
    bool new_job = false;
    std::string job_name;  // as the message named it (the job's own may carry a " #2")
};

// The queue store as the milter uses it: opened once per process, on first
// need. When it cannot be opened (a missing or broken queue_directory) every
// intake fails with the reason, and the next one tries again a few seconds
// later, so that the milter itself keeps running and ordinary mail flows.
class Intake {
public:
    explicit Intake(std::string queue_directory);
    ~Intake();

    const std::string& queue_directory() const { return dir_; }

    // Opens the store now; returns the problem ("" when it is open).
    std::string try_open();

    // Commits the message durably, before the caller answers the MTA, into the job
    // `key` names (kept open open_ms after its last message; see store::Intake).
    // Throws store::StoreError or std::runtime_error with a reason for the client.
    Enqueued enqueue(MessageContext& msg, const std::string& host_queue_id, const JobKey& key,
                     std::int64_t open_ms);

    // Waits for commits in progress, then closes the store; later intakes fail.
    void close();
    // Runs f(store) on the open store (opening it first when needed), beside
    // intakes; throws store::StoreError when it cannot be opened.
    template <class F>
    auto with_store(F&& f) -> decltype(f(std::declval<store::QueueStore&>())) {
        for (int pass = 0; pass < 2; ++pass) {
            {
                std::shared_lock lock(mu_);
                if (store_) return f(*store_);
            }
            if (pass == 0) try_open();
        }
        std::shared_lock lock(mu_);
        throw store::StoreError(open_error_.empty() ? "the queue store is not open" : open_error_);
    }

private:
    Enqueued commit(store::QueueStore& qs, MessageContext& msg, const store::Intake& in);

    std::string dir_;
    std::shared_mutex mu_;       // shared: an intake in progress; unique: open/close
    std::unique_ptr<store::QueueStore> store_;
    std::string open_error_;
    std::int64_t next_open_ms_ = 0;
    bool closed_ = false;
};

// "J00002A: message=17, queue_id=4Xq1, from=<a@b>, nrcpt=3, size=1234, job=\"spring\", action=discard"
std::string intake_log_line(const Enqueued& e, const MessageContext& msg, const std::string& host_queue_id,
                            const std::string& action);

// Postfix's qmgr line, so that pflogsumm counts the size of what mxlane delivers:
// "J00002A: from=<a@b>, size=1234, nrcpt=3 (queue active)".
std::string size_log_line(const Enqueued& e, const MessageContext& msg);

}  // namespace mxlane::milter
