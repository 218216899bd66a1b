// result_writer: per-recipient results -> the store, many to one transaction, on a thread of its own.
#include "qrunner/result_writer.hpp"

#include <pthread.h>
#include <signal.h>

#include <boost/asio/post.hpp>

#include "libshared/log.hpp"
#include "libshared/store/codec.hpp"

namespace mxlane::qrunner {

namespace {

constexpr std::size_t kMaxBatch = 5000;

// A store error worth trying again later: it says nothing about the results themselves.
bool transient(const std::exception& e) {
    if (const auto* se = dynamic_cast<const store::StoreError*>(&e)) return se->transient();
    if (dynamic_cast<const store::CodecError*>(&e)) return false;
    return dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
}

std::string describe(const store::Outcome& o) {
    return store::format_job_id(o.job_id) + " seq " + std::to_string(o.seq) + " (" +
           std::string(store::state_name(o.state)) + ")";
}

}  // namespace

ResultWriter::ResultWriter(store::QueueStore& store, boost::asio::any_io_executor store_exec, Written on_written,
                           Backoff backoff)
    : store_(store), exec_(store_exec), on_written_(std::move(on_written)), backoff_(backoff) {
    // The thread takes no signals: the daemon's own handling must get them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

ResultWriter::~ResultWriter() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void ResultWriter::add(store::Outcome outcome) {
    {
        std::lock_guard lock(mu_);
        pending_.push_back(std::move(outcome));
    }
    wake_.notify_one();
}

void ResultWriter::add(std::vector<store::Outcome> outcomes) {
    {
        std::lock_guard lock(mu_);
        for (auto& o : outcomes) pending_.push_back(std::move(o));
    }
    wake_.notify_one();
}

std::size_t ResultWriter::pending() const {
    std::lock_guard lock(mu_);
    return pending_.size() + in_write_;
}

std::size_t ResultWriter::set_aside() const {
    std::lock_guard lock(mu_);
    return set_aside_;
}

std::size_t ResultWriter::transient_failures() const {
    std::lock_guard lock(mu_);
    return transient_failures_;
}

// No gathering delay: while one commit runs, the next results collect, so the
// batches grow with the load and a result waits for at most one commit.
void ResultWriter::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (pending_.empty()) return;  // stopping, nothing left
        // Backing off: new results wait with the others (they do not re-arm a write).
        if (!stopping_ && delay_.count() > 0 && std::chrono::steady_clock::now() < retry_at_) {
            wake_.wait_until(lock, retry_at_, [&] { return stopping_; });
            continue;
        }
        std::vector<store::Outcome> batch;
        if (pending_.size() <= kMaxBatch) batch.swap(pending_);
        else {
            batch.assign(std::make_move_iterator(pending_.begin()),
                         std::make_move_iterator(pending_.begin() + kMaxBatch));
            pending_.erase(pending_.begin(), pending_.begin() + kMaxBatch);
        }
        in_write_ = batch.size();
        lock.unlock();
        std::vector<std::uint64_t> finished;
        std::vector<store::Outcome> left;
        std::size_t done = 0;
        const bool ok = write(batch, finished, done, left);
        lock.lock();
        if (ok) {
            delay_ = std::chrono::milliseconds(0);
        } else {
            ++transient_failures_;
            delay_ = delay_.count() == 0 ? backoff_.first : std::min(backoff_.max, delay_ * 2);
            retry_at_ = std::chrono::steady_clock::now() + delay_;
            // Kept, in order, ahead of what came meanwhile: the recipients stay in flight until written.
            pending_.insert(pending_.begin(), std::make_move_iterator(left.begin()), std::make_move_iterator(left.end()));
            if (stopping_) {
                in_write_ = 0;
                log::error("stopping with " + std::to_string(pending_.size()) +
                           " delivery results unwritten; their recipients are taken back at the next start");
                return;
            }
        }
        if (done > 0)
            boost::asio::post(exec_, [this, done, finished = std::move(finished)] { on_written_(done, finished); });
        // Only now, after the post: whoever sees pending() == 0 and then posts to
        // the store executor runs after on_written.
        in_write_ = 0;
    }
}

bool ResultWriter::write(std::vector<store::Outcome>& batch, std::vector<std::uint64_t>& finished, std::size_t& done,
                         std::vector<store::Outcome>& left) {
    try {
        finished = store_.write_results(batch);
        done = batch.size();
        return true;
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        if (transient(e)) {
            log::error(std::string("cannot write delivery results (will retry): ") + e.what());
            left = std::move(batch);
            return false;
        }
        if (batch.size() > 1)
            log::warning(std::string("cannot write ") + std::to_string(batch.size()) +
                         " delivery results at once (" + e.what() + "); writing them one by one");
    }
    // A permanent error: one record (or more) cannot be written. Each result on
    // its own, so that one damaged record holds back no other.
    for (std::size_t i = 0; i < batch.size(); ++i) {
        try {
            auto f = store_.write_results(std::span<const store::Outcome>(&batch[i], 1));
            finished.insert(finished.end(), f.begin(), f.end());
            ++done;
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            if (transient(e)) {
                log::error(std::string("cannot write delivery results (will retry): ") + e.what());
                left.assign(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(i)),
                            std::make_move_iterator(batch.end()));
                return false;
            }
            log::error("cannot write the delivery result for " + describe(batch[i]) + ": " + e.what() +
                       "; the recipient is left in flight for the administrator");
            ++done;
            std::lock_guard lock(mu_);
            ++set_aside_;
        }
    }
    return true;
}

}  // namespace mxlane::qrunner
