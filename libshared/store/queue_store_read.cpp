// queue_store_read: reading the queue: jobs with their counts, messages, recipients in batches, message text.
#include "libshared/store/queue_store.hpp"

#include "libshared/store/codec.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

void QueueStore::sum_counts(DbTxn* txn, Job& job) {
    job.counts = {};
    job.messages = 0;
    scan(env_->counts(), txn, job_key(job.id), job_key(job.id), [&](const std::string&, const std::string& data) {
        auto mc = MessageCounts::decode(data);
        for (std::size_t i = 0; i < kStateCount; ++i) job.counts[i] += mc.counts[i];
        job.messages++;
        return true;
    });
}

std::optional<Job> QueueStore::job(std::uint64_t id) {
    return env_->transact([&](DbTxn* txn) {
        auto j = load_job(txn, id);
        if (j) sum_counts(txn, *j);
        return j;
    });
}

std::vector<Job> QueueStore::jobs() {
    return env_->transact([&](DbTxn* txn) {
        std::vector<Job> out;
        scan(env_->jobs(), txn, std::string(), std::string(), [&](const std::string& k, const std::string& d) {
            out.push_back(Job::decode(get_u64(k, 0), d));
            return true;
        });
        for (auto& j : out) sum_counts(txn, j);
        return out;
    });
}

std::vector<Message> QueueStore::messages(std::uint64_t job_id) {
    return env_->transact([&](DbTxn* txn) {
        std::vector<Message> out;
        scan(env_->messages(), txn, job_key(job_id), job_key(job_id), [&](const std::string& k, const std::string& d) {
            out.push_back(Message::decode(job_id, get_u64(k, 8), d));
            return true;
        });
        return out;
    });
}

std::optional<Message> QueueStore::message(std::uint64_t job_id, std::uint64_t msg_id) {
    return env_->transact([&](DbTxn* txn) -> std::optional<Message> {
        auto d = env_->get(env_->messages(), txn, message_key(job_id, msg_id));
        if (!d) return std::nullopt;
        return Message::decode(job_id, msg_id, *d);
    });
}

std::optional<Recipient> QueueStore::recipient(std::uint64_t job_id, std::uint64_t seq) {
    expand_packed_under(message_key(job_id, seq >> kIndexBits));  // its message only
    return env_->transact([&](DbTxn* txn) -> std::optional<Recipient> {
        std::string key = recipient_key(job_id, seq);
        auto d = env_->get(env_->recipients(), txn, key);
        if (!d) return std::nullopt;
        return Recipient::decode(key, *d);
    });
}

void QueueStore::each_recipient(std::uint64_t job_id, std::optional<RcptState> state,
                                const std::function<bool(const Recipient&)>& f) {
    expand_packed(job_id);
    std::string prefix = job_key(job_id), start = prefix;
    for (;;) {
        std::vector<Recipient> batch = env_->transact([&](DbTxn* txn) {
            std::vector<Recipient> out;
            scan(env_->recipients(), txn, start, prefix, [&](const std::string& k, const std::string& d) {
                out.push_back(Recipient::decode(k, d));
                return out.size() < kBatch;
            });
            return out;
        });
        for (const auto& r : batch)
            if ((!state || r.state == *state) && !f(r)) return;
        if (batch.size() < kBatch) return;
        start = batch.back().key();
        start.push_back('\0');  // the next key after the last one read
    }
}

void QueueStore::read_text(const Message& m, const std::function<void(std::string_view)>& f) {
    for (std::uint32_t i = 0; i < m.chunks; ++i) {
        auto chunk = env_->transact([&](DbTxn* txn) { return env_->get(env_->bodies(), txn, body_key(m.id, i)); });
        if (!chunk) throw StoreError("message text missing in the store for " + format_job_id(m.job_id));
        f(*chunk);
    }
}

std::string QueueStore::text(const Message& m) {
    std::string out;
    out.reserve(m.size);
    read_text(m, [&](std::string_view chunk) { out.append(chunk); });
    return out;
}

std::optional<std::uint64_t> QueueStore::job_by_name(const std::string& name) {
    return env_->transact([&](DbTxn* txn) -> std::optional<std::uint64_t> {
        auto id = env_->get(env_->job_names(), txn, name);
        if (!id) return std::nullopt;
        return get_u64(*id, 0);
    });
}

}  // namespace mxlane::store
