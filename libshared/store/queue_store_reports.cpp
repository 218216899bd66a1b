// queue_store_reports: what the milter learns after delivery: asynchronous bounces and complaints.
#include <cctype>

#include "libshared/address.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

namespace {

// meta keys: the job's complaint count, and a mark per recipient that complained.
std::string complaints_key(std::uint64_t job_id) { return "complaints:" + job_key(job_id); }
std::string complained_key(std::uint64_t job_id, std::uint64_t seq) {
    return "complained:" + recipient_key(job_id, seq);
}

// The reply code a DSN's diagnostic starts with ("550 5.1.1 ..."), else one
// that goes with its status class (5.x.x: 550).
int reply_code_of(const std::string& status, const std::string& diagnostic) {
    if (diagnostic.size() >= 3 && std::isdigit(static_cast<unsigned char>(diagnostic[0])) &&
        std::isdigit(static_cast<unsigned char>(diagnostic[1])) &&
        std::isdigit(static_cast<unsigned char>(diagnostic[2])) &&
        (diagnostic.size() == 3 || diagnostic[3] == ' ' || diagnostic[3] == '-'))
        return std::stoi(diagnostic.substr(0, 3));
    if (status.starts_with('5')) return 550;
    if (status.starts_with('4')) return 450;
    return 0;
}

}  // namespace

bool QueueStore::bounce_after(std::uint64_t job_id, std::uint64_t seq, const std::string& status,
                              const std::string& diagnostic, bool suppress, std::int64_t now) {
    return env_->transact([&](DbTxn* txn) {
        // recipients -> suppressed -> inflight -> due -> counts (the lock order).
        const std::string key = recipient_key(job_id, seq);
        auto data = env_->get(env_->recipients(), txn, key, DB_RMW);
        if (!data) return false;
        Recipient r = Recipient::decode(key, *data);
        // Only what was handed over can bounce later; a pending recipient's own
        // next attempt decides (and a job never finishes from here).
        if (r.state != RcptState::delivered && r.state != RcptState::relayed) return false;
        const RcptState before = r.state;
        r.state = RcptState::bounced;
        r.next_attempt = 0;
        r.dsn = status;
        r.reply_text = diagnostic;
        r.reply_code = reply_code_of(status, diagnostic);
        r.last_attempt = now;
        save_recipient(txn, key, *data, r.encode());
        if (suppress) {
            std::string address = to_lower(r.address);
            add_suppression(txn, Suppression{address, "bounce", now, job_id});
        }
        auto delta = no_delta();
        move_count(delta, before, RcptState::bounced);
        add_counts(txn, job_id, r.message_id, delta);
        return true;
    });
}

std::optional<QueueStore::ComplaintCount> QueueStore::complaint(std::uint64_t job_id, std::uint64_t seq,
                                                                std::int64_t now) {
    expand_packed(job_id);
    return env_->transact([&](DbTxn* txn) -> std::optional<ComplaintCount> {
        auto job = load_job(txn, job_id);
        if (!job) return std::nullopt;
        const std::string key = recipient_key(job_id, seq);
        auto data = env_->get(env_->recipients(), txn, key);
        if (!data) return std::nullopt;
        Recipient r = Recipient::decode(key, *data);
        ComplaintCount out;
        out.address = to_lower(r.address);
        add_suppression(txn, Suppression{out.address, "complaint", now, job_id});
        sum_counts(txn, *job);
        out.delivered = job->counts[static_cast<int>(RcptState::delivered)] +
                        job->counts[static_cast<int>(RcptState::relayed)];
        // meta last: no other transaction takes it with the queue's databases.
        auto count = env_->get(env_->meta(), txn, complaints_key(job_id), DB_RMW);
        out.complaints = count ? get_u64(*count, 0) : 0;
        if (!env_->get(env_->meta(), txn, complained_key(job_id, seq), DB_RMW)) {
            std::string stamp;
            put_u64(stamp, static_cast<std::uint64_t>(now));
            env_->put(env_->meta(), txn, complained_key(job_id, seq), stamp);
            ++out.complaints;
            std::string v;
            put_u64(v, out.complaints);
            env_->put(env_->meta(), txn, complaints_key(job_id), v);
            out.counted = true;
        }
        return out;
    });
}

std::uint64_t QueueStore::complaints(std::uint64_t job_id) {
    return env_->transact([&](DbTxn* txn) -> std::uint64_t {
        auto count = env_->get(env_->meta(), txn, complaints_key(job_id));
        return count ? get_u64(*count, 0) : 0;
    });
}

void QueueStore::forget_complaints(std::uint64_t job_id) {
    const std::string marks = "complained:" + job_key(job_id);
    for (;;) {
        std::size_t n = env_->transact([&](DbTxn* txn) {
            std::vector<std::string> keys;
            scan(env_->meta(), txn, marks, marks, [&](const std::string& k, const std::string&) {
                keys.push_back(k);
                return keys.size() < kBatch;
            }, DB_RMW);
            for (const auto& k : keys) env_->del(env_->meta(), txn, k);
            if (keys.size() < kBatch) env_->del(env_->meta(), txn, complaints_key(job_id));
            return keys.size();
        });
        if (n < kBatch) return;
    }
}

}  // namespace mxlane::store
