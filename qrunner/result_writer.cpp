// result_writer: per-recipient results -> the store, many to one transaction, on the store thread.
#include "qrunner/result_writer.hpp"

#include <boost/asio/post.hpp>

#include "libshared/log.hpp"

namespace mxlane::qrunner {

namespace {
// Long enough to gather the results of many concurrent sessions into one
// commit, short enough that a finished recipient is durable almost at once.
constexpr auto kGather = std::chrono::milliseconds(20);
constexpr std::size_t kMaxBatch = 5000;
}  // namespace

ResultWriter::ResultWriter(store::QueueStore& store, boost::asio::any_io_executor store_exec, Written on_written)
    : store_(store), exec_(store_exec), timer_(store_exec), on_written_(std::move(on_written)) {}

void ResultWriter::add(store::Outcome outcome) {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(outcome));
    schedule();
}

void ResultWriter::add(std::vector<store::Outcome> outcomes) {
    std::lock_guard lock(mu_);
    for (auto& o : outcomes) pending_.push_back(std::move(o));
    schedule();
}

std::size_t ResultWriter::pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
}

void ResultWriter::schedule() {
    if (scheduled_ || pending_.empty()) return;
    scheduled_ = true;
    boost::asio::post(exec_, [this] {
        timer_.expires_after(kGather);
        timer_.async_wait([this](boost::system::error_code) { write_now(); });
    });
}

void ResultWriter::write_now() {
    std::vector<store::Outcome> batch;
    {
        std::lock_guard lock(mu_);
        if (pending_.size() <= kMaxBatch) batch.swap(pending_);
        else {
            batch.assign(std::make_move_iterator(pending_.begin()),
                         std::make_move_iterator(pending_.begin() + kMaxBatch));
            pending_.erase(pending_.begin(), pending_.begin() + kMaxBatch);
        }
    }
    std::vector<std::uint64_t> finished;
    try {
        finished = store_.write_results(batch);
    } catch (const std::exception& e) {
        // Keep them: the recipients stay in flight until their result is written.
        log::error(std::string("cannot write delivery results (will retry): ") + e.what());
        std::lock_guard lock(mu_);
        pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
        scheduled_ = false;
        boost::asio::post(exec_, [this] {
            timer_.expires_after(std::chrono::seconds(1));
            timer_.async_wait([this](boost::system::error_code) {
                std::lock_guard lock(mu_);
                schedule();
            });
        });
        return;
    }
    {
        std::lock_guard lock(mu_);
        scheduled_ = false;
        schedule();
    }
    on_written_(batch.size(), finished);
}

}  // namespace mxlane::qrunner
