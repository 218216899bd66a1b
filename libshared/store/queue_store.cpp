// queue_store: the queue's operations: intake, due scan and claim, results, admin, suppression.
#include "libshared/store/queue_store.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "libshared/address.hpp"
#include "libshared/queue_lifetime.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {
namespace {

constexpr std::size_t kChunk = 64 * 1024;  // body chunk size in bodies.db

}  // namespace

using namespace detail;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

QueueStore::QueueStore(const std::string& queue_directory)
    : env_(std::make_unique<Environment>(queue_directory)) {}

// ---------------------------------------------------------------- intake

std::optional<Job> QueueStore::load_job(DbTxn* txn, std::uint64_t id, std::uint32_t flags) {
    auto data = env_->get(env_->jobs(), txn, job_key(id), flags);
    if (!data) return std::nullopt;
    return Job::decode(id, *data);
}

void QueueStore::save_job(DbTxn* txn, const Job& j) { env_->put(env_->jobs(), txn, job_key(j.id), j.encode()); }

Job QueueStore::find_or_create_job(DbTxn* txn, const Intake& in, std::int64_t now, bool& created) {
    created = false;
    // Names are per owner: two senders using one name get two jobs.
    std::string key = in.job_owner.empty() ? in.job_name : in.job_owner + '\0' + in.job_name;
    if (!in.job_name.empty()) {
        // DB_RMW: two intakes naming a new job at once serialise here instead of making two jobs.
        // A finished job is never reopened: the name then goes to a new job.
        if (auto id = env_->get(env_->job_names(), txn, key, DB_RMW)) {
            if (auto job = load_job(txn, get_u64(*id, 0)); job && job->state != JobState::done) return *job;
        }
    }
    Job j;
    j.id = env_->next_job_id();
    j.name = in.job_name;
    j.sender = in.sender;
    j.created = now;
    j.state = in.job_state;
    save_job(txn, j);
    if (!in.job_name.empty()) env_->put(env_->job_names(), txn, key, job_key(j.id));
    created = true;
    return j;
}

void QueueStore::store_text(DbTxn* txn, Message& m, std::istream& text) {
    std::string chunk(kChunk, '\0');
    m.size = 0;
    m.chunks = 0;
    while (text) {
        text.read(chunk.data(), static_cast<std::streamsize>(kChunk));
        auto n = static_cast<std::size_t>(text.gcount());
        if (n == 0) break;
        env_->put(env_->bodies(), txn, body_key(m.id, m.chunks), chunk.substr(0, n));
        ++m.chunks;
        m.size += n;
    }
    if (text.bad()) throw StoreError("cannot read the message text");
}

void QueueStore::add_counts(DbTxn* txn, std::uint64_t job_id, std::uint64_t msg_id,
                            const std::array<std::int64_t, kStateCount>& delta) {
    std::string key = message_key(job_id, msg_id);
    MessageCounts mc;
    if (auto data = env_->get(env_->counts(), txn, key, DB_RMW)) mc = MessageCounts::decode(*data);
    for (std::size_t i = 0; i < kStateCount; ++i)
        mc.counts[i] = static_cast<std::uint64_t>(static_cast<std::int64_t>(mc.counts[i]) + delta[i]);
    env_->put(env_->counts(), txn, key, mc.encode());
}

void QueueStore::save_recipient(DbTxn* txn, const std::string& key, std::string_view before,
                                const std::string& after) {
    auto old_due = before.empty() ? std::nullopt : Recipient::due_key(key, before);
    auto new_due = Recipient::due_key(key, after);
    if (old_due != new_due) {
        if (old_due) env_->del(env_->due(), txn, *old_due);
        if (new_due) env_->put(env_->due(), txn, *new_due, key);
    }
    env_->put(env_->recipients(), txn, key, after);
}

void QueueStore::insert_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                                   std::span<const NewRecipient> rcpts, std::int64_t now) {
    std::string ckey = message_key(job_id, message_id);
    MessageCounts mc;
    if (auto data = env_->get(env_->counts(), txn, ckey, DB_RMW)) mc = MessageCounts::decode(*data);
    if (mc.next_index + rcpts.size() > kMaxRecipientsPerMessage)
        throw StoreError("too many recipients for one message");
    for (const auto& nr : rcpts) {
        Recipient r;
        r.job_id = job_id;
        r.seq = make_seq(message_id, mc.next_index++);
        r.message_id = message_id;
        r.address = nr.address;
        r.fields = nr.fields;
        r.state = RcptState::queued;
        r.next_attempt = now;
        r.queued_at = now;
        save_recipient(txn, r.key(), {}, r.encode());
    }
    mc.counts[static_cast<int>(RcptState::queued)] += rcpts.size();
    env_->put(env_->counts(), txn, ckey, mc.encode());
}

IntakeResult QueueStore::add_message(const Intake& in, std::istream& text, std::int64_t now) {
    std::uint64_t msg_id = env_->next_message_id();
    auto start = text.tellg();
    auto result = env_->transact([&](DbTxn* txn) {
        text.clear();
        if (start != std::streampos(-1)) text.seekg(start);  // a retried transaction re-reads the text
        bool created = false;
        Job job = find_or_create_job(txn, in, now, created);
        Message m;
        m.job_id = job.id;
        m.id = msg_id;
        m.sender = in.sender;
        m.host_queue_id = in.host_queue_id;
        m.mail_params = in.mail_params;
        m.field_names = in.field_names;
        m.personalised = in.personalised;
        m.eight_bit = in.eight_bit;
        m.smtputf8 = in.smtputf8;
        m.created = now;
        store_text(txn, m, text);
        env_->put(env_->messages(), txn, message_key(job.id, m.id), m.encode());
        insert_recipients(txn, job.id, m.id, in.recipients, now);
        return IntakeResult{job.id, m.id, in.recipients.size(), created};
    });
    env_->maybe_checkpoint();
    return result;
}

void QueueStore::add_recipients(std::uint64_t job_id, std::uint64_t message_id,
                                std::span<const NewRecipient> rcpts, std::int64_t now) {
    env_->transact([&](DbTxn* txn) { insert_recipients(txn, job_id, message_id, rcpts, now); });
    env_->maybe_checkpoint();
}

void QueueStore::activate_job(std::uint64_t job_id) {
    env_->transact([&](DbTxn* txn) {
        auto job = load_job(txn, job_id, DB_RMW);
        if (!job) throw StoreError("no such job: " + format_job_id(job_id));
        job->state = JobState::active;
        save_job(txn, *job);
    });
}

// ---------------------------------------------------------------- scheduler

std::size_t QueueStore::recover_inflight(std::int64_t now) {
    std::size_t total = 0;
    for (;;) {
        std::size_t n = env_->transact([&](DbTxn* txn) {
            std::vector<std::string> keys;
            scan(env_->inflight(), txn, std::string(), std::string(), [&](const std::string& k, const std::string&) {
                keys.push_back(k);
                return keys.size() < kBatch;
            });
            for (const auto& k : keys) {
                if (auto data = env_->get(env_->recipients(), txn, k, DB_RMW)) {
                    Recipient r = Recipient::decode(k, *data);
                    if (is_pending(r.state)) {
                        // A claim takes the recipient out of the due index; a store last
                        // run by a qrunner that leased in place may still have it there.
                        if (auto stale = Recipient::due_key(k, *data)) env_->del(env_->due(), txn, *stale);
                        r.next_attempt = now;
                        save_recipient(txn, k, {}, r.encode());
                    }
                }
                env_->del(env_->inflight(), txn, k);
            }
            return keys.size();
        });
        total += n;
        if (n < kBatch) break;
    }
    return total;
}

Claim QueueStore::claim_due(std::int64_t until, std::size_t limit, std::int64_t now, std::int64_t lifetime_ms) {
    return env_->transact([&](DbTxn* txn) {
        Claim claim;
        std::vector<std::pair<std::string, std::string>> found;  // due key, recipient key
        {
            CursorGuard g;
            env_->due().cursor(txn, &g.c, 0);
            Dbt dkey, rkey;
            dkey.set_flags(DB_DBT_REALLOC);
            rkey.set_flags(DB_DBT_REALLOC);
            // Every entry read leaves the index here, where the cursor stands: a
            // recipient claimed is in flight, any other gets its entry back below.
            int rc = g.c->get(&dkey, &rkey, DB_FIRST | DB_RMW);
            while (rc == 0 && found.size() < limit) {
                std::string dk = str(dkey);
                if (static_cast<std::int64_t>(get_u64(dk, 0)) > until) break;
                g.c->del(0);
                found.emplace_back(std::move(dk), str(rkey));
                rc = g.c->get(&dkey, &rkey, DB_NEXT | DB_RMW);
            }
            std::free(dkey.get_data());
            std::free(rkey.get_data());
        }
        claim.scanned = found.size();
        std::map<std::uint64_t, std::optional<Job>> jobs;
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::array<std::int64_t, kStateCount>> deltas;
        for (auto& [due_key, key] : found) {
            auto data = env_->get(env_->recipients(), txn, key, DB_RMW);
            if (!data || Recipient::due_key(key, *data) != due_key) continue;  // stale: gone or moved on
            Recipient r = Recipient::decode(key, *data);
            auto [it, fresh] = jobs.try_emplace(r.job_id);
            if (fresh) it->second = load_job(txn, r.job_id);
            const auto& job = it->second;
            RcptState final_state = r.state;
            if (!job) {
                final_state = RcptState::expired;  // orphan of a deleted job: take it out of the index
            } else if (job->state == JobState::incoming) {
                r.next_attempt = now + 5000;  // its job is still being submitted
                save_recipient(txn, key, {}, r.encode());
                continue;
            } else if (r.state == RcptState::deferred && lifetime_over(r.queued_at, now, lifetime_ms)) {
                final_state = RcptState::expired;
            } else if (env_->get(env_->suppressed(), txn, to_lower(r.address))) {
                final_state = RcptState::suppressed;
            }
            if (final_state != r.state) {
                move_count(deltas.try_emplace({r.job_id, r.message_id}, no_delta()).first->second, r.state,
                           final_state);
                r.state = final_state;
                if (final_state == RcptState::expired && r.dsn.empty()) r.dsn = "4.4.7";
                save_recipient(txn, key, {}, r.encode());
                (final_state == RcptState::expired ? claim.expired : claim.suppressed).push_back(std::move(r));
                continue;
            }
            // In flight: out of the due index until its result puts it back or ends it.
            std::string stamp;
            put_u64(stamp, static_cast<std::uint64_t>(now));
            env_->put(env_->inflight(), txn, key, stamp);
            claim.due.push_back(std::move(r));
        }
        for (const auto& [k, d] : deltas)
            if (jobs[k.first]) add_counts(txn, k.first, k.second, d);
        return claim;
    });
}

std::vector<std::uint64_t> QueueStore::write_results(std::span<const Outcome> outcomes) {
    auto done = env_->transact([&](DbTxn* txn) {
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::array<std::int64_t, kStateCount>> deltas;
        std::set<std::uint64_t> touched;
        for (const auto& o : outcomes) {
            std::string key = recipient_key(o.job_id, o.seq);
            // A recipient in flight has no due entry (the claim took it out).
            const bool was_in_flight = env_->del(env_->inflight(), txn, key);
            auto data = env_->get(env_->recipients(), txn, key, DB_RMW);
            if (!data) continue;  // its job was deleted meanwhile
            Recipient r = Recipient::decode(key, *data);
            if (r.state != o.state) {
                move_count(deltas.try_emplace({r.job_id, r.message_id}, no_delta()).first->second, r.state,
                           o.state);
            }
            r.state = o.state;
            if (o.count_attempt) {
                r.attempts++;
                r.last_attempt = o.attempt_time;
                r.reply_code = o.reply_code;
                r.dsn = o.dsn;
                r.reply_text = o.reply_text;
                r.host = o.host;
                r.path = o.path;
            }
            r.next_attempt = is_pending(o.state) ? o.next_attempt : 0;
            save_recipient(txn, key, was_in_flight ? std::string_view() : std::string_view(*data), r.encode());
            if (o.suppress) {
                Encoder e;
                e.i64(o.attempt_time).str(o.reply_text);
                env_->put(env_->suppressed(), txn, to_lower(r.address), e.take());
            }
            touched.insert(r.job_id);
        }
        for (const auto& [k, d] : deltas) add_counts(txn, k.first, k.second, d);
        std::vector<std::uint64_t> finished;
        for (auto id : touched) {
            auto job = load_job(txn, id, DB_RMW);
            if (!job || job->state != JobState::active) continue;
            sum_counts(txn, *job);
            if (job->pending() == 0) {
                job->state = JobState::done;
                save_job(txn, *job);
                finished.push_back(id);
            }
        }
        return finished;
    });
    env_->maybe_checkpoint();
    return done;
}

std::optional<std::int64_t> QueueStore::next_due() {
    return env_->transact([&](DbTxn* txn) -> std::optional<std::int64_t> {
        CursorGuard g;
        env_->due().cursor(txn, &g.c, 0);
        Dbt k, d;
        k.set_flags(DB_DBT_REALLOC);
        d.set_flags(DB_DBT_PARTIAL);
        d.set_dlen(0);
        int rc = g.c->get(&k, &d, DB_FIRST);
        std::optional<std::int64_t> out;
        if (rc == 0) out = static_cast<std::int64_t>(get_u64(str(k), 0));
        std::free(k.get_data());
        return out;
    });
}

// ---------------------------------------------------------------- reading

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
    return env_->transact([&](DbTxn* txn) -> std::optional<Recipient> {
        std::string key = recipient_key(job_id, seq);
        auto d = env_->get(env_->recipients(), txn, key);
        if (!d) return std::nullopt;
        return Recipient::decode(key, *d);
    });
}

void QueueStore::each_recipient(std::uint64_t job_id, std::optional<RcptState> state,
                                const std::function<bool(const Recipient&)>& f) {
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
