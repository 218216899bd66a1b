// enqueue: the durable take-over at end of message: job, message and recipients in one commit.
#include "milter/enqueue.hpp"

#include <sys/statvfs.h>

#include "libshared/store/records.hpp"
#include "libshared/address.hpp"

namespace mxlane::milter {
namespace {

constexpr std::int64_t kReopenDelayMs = 5000;  // between attempts to open a broken store

store::Intake intake_for(const MessageContext& msg, const std::string& host_queue_id, const JobKey& key,
                         std::int64_t open_ms) {
    store::Intake in;
    in.job_name = key.name;
    in.pool = msg.pool;
    in.job_owner = msg.job_owner();
    // Sender + Subject: the envelope sender is part of the key even under a SASL login.
    if (key.by == KeyedBy::sender_subject && !msg.login().empty()) in.job_owner += '\n' + to_lower(msg.sender());
    in.open_ms = key.by == KeyedBy::none ? 0 : open_ms;
    in.sender = msg.sender();
    in.host_queue_id = host_queue_id;
    in.mail_params = msg.mail_params();
    in.eight_bit = msg.eight_bit();
    in.smtputf8 = msg.smtputf8();
    in.concurrent = MessageContext::in_progress();
    in.recipients.reserve(msg.recipients().size());
    for (const auto& r : msg.recipients()) in.recipients.push_back(store::NewRecipient{r, {}});
    return in;
}

}  // namespace

void check_free_space(const std::string& dir, std::size_t size) {
    struct statvfs fs;
    if (::statvfs(dir.c_str(), &fs) != 0) return;  // opening the store will say what is wrong
    std::uint64_t avail = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (avail < 2 * static_cast<std::uint64_t>(size) + kQueueMinFree)
        throw IntakeRefused("452", "4.3.1",
                            "mxlane: not enough free space in the queue (" + std::to_string(avail / 1024) +
                                " kB free for a message of " + std::to_string(size / 1024) + " kB)");
}

Intake::Intake(std::string queue_directory) : dir_(std::move(queue_directory)) {}

Intake::~Intake() { close(); }

std::string Intake::try_open() {
    std::unique_lock lock(mu_);
    if (store_) return {};
    if (closed_) return "mxlane-milter is stopping";
    std::int64_t now = store::now_ms();
    if (now < next_open_ms_) return open_error_;
    try {
        store_ = std::make_unique<store::QueueStore>(dir_);
        open_error_.clear();
        return {};
    } catch (const std::exception& e) {
        open_error_ = e.what();
        next_open_ms_ = now + kReopenDelayMs;
        return open_error_;
    }
}

Enqueued Intake::commit(store::QueueStore& qs, MessageContext& msg, const store::Intake& in) {
    auto r = qs.add_message(in, msg.text(), store::now_ms());
    return Enqueued{r.job_id, r.message_id, r.new_job, in.job_name};
}

Enqueued Intake::enqueue(MessageContext& msg, const std::string& host_queue_id, const JobKey& key,
                         std::int64_t open_ms) {
    // The shared lock lets intakes commit side by side (and share a log flush);
    // only opening and closing the store take it alone.
    check_free_space(dir_, msg.size());
    store::Intake in = intake_for(msg, host_queue_id, key, open_ms);
    for (int pass = 0; pass < 2; ++pass) {
        {
            std::shared_lock lock(mu_);
            if (store_) return commit(*store_, msg, in);
        }
        if (pass == 0) try_open();
    }
    std::shared_lock lock(mu_);
    throw store::StoreError(open_error_.empty() ? "the queue store is not open" : open_error_);
}

void Intake::close() {
    std::unique_lock lock(mu_);
    closed_ = true;
    open_error_ = "mxlane-milter is stopping";
    store_.reset();
}

std::string intake_log_line(const Enqueued& e, const MessageContext& msg, const std::string& host_queue_id,
                            const std::string& action) {
    return store::format_job_id(e.job_id) + ": message=" + std::to_string(e.message_id) +
           ", queue_id=" + (host_queue_id.empty() ? "none" : host_queue_id) + ", from=<" + msg.sender() +
           ">, nrcpt=" + std::to_string(msg.recipients().size()) + ", size=" + std::to_string(msg.size()) +
           ", job=\"" + e.job_name + "\", action=" + action;
}

std::string size_log_line(const Enqueued& e, const MessageContext& msg) {
    return store::format_job_id(e.job_id) + ": from=<" + msg.sender() + ">, size=" + std::to_string(msg.size()) +
           ", nrcpt=" + std::to_string(msg.recipients().size()) + " (queue active)";
}

}  // namespace mxlane::milter
