// queue_store: the queue's writes: intake, due scan and claim, results (jobs: queue_store_jobs.cpp; reading: queue_store_read.cpp; admin: queue_store_admin.cpp; packed recipients: queue_store_packed.cpp).
#include "libshared/store/queue_store.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
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

void QueueStore::store_text(DbTxn* txn, Message& m, std::istream& text) {
    auto buffer = std::make_unique_for_overwrite<char[]>(kChunk);  // not zeroed: read() fills it
    std::string chunk;
    m.size = 0;
    m.chunks = 0;
    while (text) {
        text.read(buffer.get(), static_cast<std::streamsize>(kChunk));
        auto n = static_cast<std::size_t>(text.gcount());
        if (n == 0) break;
        chunk.assign(buffer.get(), n);
        env_->put(env_->bodies(), txn, body_key(m.id, m.chunks), chunk);
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
    env_->put(env_->recipients(), txn, key, after);
    auto old_due = before.empty() ? std::nullopt : Recipient::due_key(key, before);
    auto new_due = Recipient::due_key(key, after);
    if (old_due != new_due) {
        if (old_due) env_->del(env_->due(), txn, *old_due);
        if (new_due) env_->put(env_->due(), txn, *new_due, key);
    }
}

void QueueStore::put_new_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                                    std::uint64_t first_index, std::span<const NewRecipient> rcpts,
                                    std::int64_t queued_at) {
    std::vector<std::pair<std::string, std::string>> due;  // due key, recipient key
    due.reserve(rcpts.size());
    std::uint64_t index = first_index;
    for (const auto& nr : rcpts) {
        Recipient r;
        r.job_id = job_id;
        r.seq = make_seq(message_id, index++);
        r.message_id = message_id;
        r.address = nr.address;
        r.fields = nr.fields;
        r.state = RcptState::queued;
        r.next_attempt = queued_at;
        r.queued_at = queued_at;
        std::string key = r.key(), data = r.encode();
        if (auto dk = Recipient::due_key(key, data)) due.emplace_back(std::move(*dk), key);
        env_->put(env_->recipients(), txn, key, data);
    }
    for (const auto& [dk, key] : due) env_->put(env_->due(), txn, dk, key);
}

void QueueStore::insert_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                                   std::span<const NewRecipient> rcpts, std::int64_t now, bool new_message) {
    std::string ckey = message_key(job_id, message_id);
    MessageCounts mc;
    // A message being added has no counters yet; more recipients for one read them
    // first (an exception to the lock order: only a submission does that).
    if (!new_message)
        if (auto data = env_->get(env_->counts(), txn, ckey, DB_RMW)) mc = MessageCounts::decode(*data);
    if (mc.next_index + rcpts.size() > kMaxRecipientsPerMessage)
        throw StoreError("too many recipients for one message");
    put_new_recipients(txn, job_id, message_id, mc.next_index, rcpts, now);
    mc.next_index += rcpts.size();
    mc.counts[static_cast<int>(RcptState::queued)] += rcpts.size();
    env_->put(env_->counts(), txn, ckey, mc.encode());
}

void QueueStore::add_recipients(std::uint64_t job_id, std::uint64_t message_id,
                                std::span<const NewRecipient> rcpts, std::int64_t now) {
    env_->transact([&](DbTxn* txn) { insert_recipients(txn, job_id, message_id, rcpts, now, false); });
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
    std::string start;
    for (;;) {
        auto [n, last] = env_->transact([&](DbTxn* txn) {
            // At a qrunner's start, before its first claim: inflight comes first here
            // (an exception to the lock order), then jobs, recipients, due, counts.
            std::vector<std::string> keys;
            scan(env_->inflight(), txn, start, std::string(), [&](const std::string& k, const std::string&) {
                keys.push_back(k);
                return keys.size() < kBatch;
            }, DB_RMW);
            std::map<std::uint64_t, std::optional<Job>> jobs;
            for (const auto& k : keys) jobs.try_emplace(get_u64(k, 0));
            for (auto& [id, job] : jobs) job = load_job(txn, id);
            std::map<std::pair<std::uint64_t, std::uint64_t>, std::array<std::int64_t, kStateCount>> deltas;
            std::size_t taken = 0;
            for (const auto& k : keys) {
                if (auto data = env_->get(env_->recipients(), txn, k, DB_RMW)) {
                    std::optional<Recipient> r = decode_or_report(k, *data);
                    if (!r) continue;  // left in flight
                    const auto& job = jobs[r->job_id];
                    const bool job_held = job && job->state == JobState::held;
                    RcptState to = r->state;
                    if (is_pending(r->state) && job_held) to = RcptState::held;
                    // Held while in flight, and the job released meanwhile: due again.
                    if (r->state == RcptState::held && job && !job_held)
                        to = r->attempts ? RcptState::deferred : RcptState::queued;
                    if (is_pending(r->state) || to != r->state) {
                        // A claim takes the recipient out of the due index; a store last
                        // run by a qrunner that leased in place may still have it there.
                        if (auto stale = Recipient::due_key(k, *data)) env_->del(env_->due(), txn, *stale);
                        if (to != r->state)
                            move_count(deltas.try_emplace({r->job_id, r->message_id}, no_delta()).first->second,
                                       r->state, to);
                        r->state = to;
                        r->next_attempt = is_pending(to) ? now : 0;
                        save_recipient(txn, k, {}, r->encode());
                    }
                }
                env_->del(env_->inflight(), txn, k);
                ++taken;
            }
            for (const auto& [k, d] : deltas) add_counts(txn, k.first, k.second, d);
            return std::make_pair(taken, keys.size() < kBatch ? std::string() : keys.back());
        });
        total += n;
        if (last.empty()) break;
        start = last;
        start.push_back('\0');
    }
    return total;
}

std::optional<Recipient> QueueStore::decode_or_report(const std::string& key, std::string_view data) {
    try {
        return Recipient::decode(key, data);
    } catch (const CodecError& e) {
        log::error(format_job_id(get_u64(key, 0)) + ": recipient seq " + std::to_string(get_u64(key, 8)) +
                   " cannot be read from the queue store (" + e.what() +
                   "); it is left in flight for the administrator");
        return std::nullopt;
    }
}

Claim QueueStore::claim_due(std::int64_t until, std::size_t limit, std::int64_t now, std::int64_t lifetime_ms) {
    expand_packed();  // messages taken in since the last claim get their due entries
    // write_nosync: a claim lost to a machine crash leaves its recipients due, and
    // the log reaches the disk in order, so no later result can outlive it.
    return env_->transact([&](DbTxn* txn) {
        Claim claim;
        // The due range is read without keeping locks (read committed), so that the
        // databases can then be taken in the lock order; a recipient another claim
        // took meanwhile has its in-flight mark.
        std::vector<std::pair<std::string, std::string>> found;  // due key, recipient key
        if (limit > 0)
            scan(env_->due(), txn, std::string(), std::string(), [&](const std::string& dk, const std::string& rk) {
                if (static_cast<std::int64_t>(get_u64(dk, 0)) > until) return false;
                found.emplace_back(dk, rk);
                return found.size() < limit;
            }, DB_READ_COMMITTED);
        claim.scanned = found.size();
        std::map<std::uint64_t, std::optional<Job>> jobs;
        for (const auto& f : found) jobs.try_emplace(get_u64(f.second, 0));
        for (auto& [id, job] : jobs) job = load_job(txn, id);
        std::map<std::string, std::optional<std::string>> records;  // recipient key -> record, in key order
        for (const auto& f : found) records.try_emplace(f.second);
        for (auto& [key, data] : records) data = env_->get(env_->recipients(), txn, key, DB_RMW);
        std::vector<std::pair<std::string, std::string>> rewrites;  // recipient key, new record
        std::vector<std::size_t> to_flight;                         // indexes into found and claim.due
        std::vector<Recipient> candidates;
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::array<std::int64_t, kStateCount>> deltas;
        std::vector<std::string> damaged;
        for (std::size_t i = 0; i < found.size(); ++i) {
            const auto& [due_key, key] = found[i];
            const auto& data = records[key];
            if (!data) continue;  // stale: gone
            std::optional<Recipient> decoded = decode_or_report(key, *data);
            if (!decoded) {
                damaged.push_back(key);
                continue;
            }
            if (Recipient::due_key(key, *data) != due_key) continue;  // stale: moved on
            Recipient& r = *decoded;
            const auto& job = jobs[r.job_id];
            RcptState final_state = r.state;
            if (!job) {
                final_state = RcptState::expired;  // orphan of a deleted job: take it out of the index
            } else if (job->state == JobState::incoming) {
                r.next_attempt = now + 5000;  // its job is still being submitted
                rewrites.emplace_back(key, r.encode());
                continue;
            } else if (job->state == JobState::held) {
                final_state = RcptState::held;  // held meanwhile: parked, not delivered
            } else if (r.state == RcptState::deferred && lifetime_over(r.queued_at, now, lifetime_ms)) {
                final_state = RcptState::expired;
            } else if (env_->get(env_->suppressed(), txn, to_lower(r.address))) {
                final_state = RcptState::suppressed;
            }
            if (final_state != r.state) {
                move_count(deltas.try_emplace({r.job_id, r.message_id}, no_delta()).first->second, r.state,
                           final_state);
                r.state = final_state;
                r.next_attempt = 0;
                if (final_state == RcptState::expired && r.dsn.empty()) r.dsn = "4.4.7";
                rewrites.emplace_back(key, r.encode());
                if (final_state != RcptState::held)
                    (final_state == RcptState::expired ? claim.expired : claim.suppressed).push_back(std::move(r));
                continue;
            }
            to_flight.push_back(i);
            candidates.push_back(std::move(r));
        }
        for (const auto& [key, data] : rewrites) env_->put(env_->recipients(), txn, key, data);
        // In flight: out of the due index until its result puts it back or ends it.
        // An in-flight mark already there means another claim took it meanwhile.
        std::string stamp;
        put_u64(stamp, static_cast<std::uint64_t>(now));
        for (const auto& key : damaged) env_->put(env_->inflight(), txn, key, stamp);
        for (std::size_t n = 0; n < to_flight.size(); ++n) {
            const std::string& key = found[to_flight[n]].second;
            Dbt k(const_cast<char*>(key.data()), static_cast<u_int32_t>(key.size()));
            Dbt d(stamp.data(), static_cast<u_int32_t>(stamp.size()));
            if (env_->inflight().put(txn, &k, &d, DB_NOOVERWRITE) == 0) claim.due.push_back(std::move(candidates[n]));
        }
        // Every entry read leaves the index; one rewritten above gets its new entry.
        for (const auto& f : found) env_->del(env_->due(), txn, f.first);
        for (const auto& [key, data] : rewrites)
            if (auto dk = Recipient::due_key(key, data)) env_->put(env_->due(), txn, *dk, key);
        for (const auto& [k, d] : deltas)
            if (jobs[k.first]) add_counts(txn, k.first, k.second, d);
        return claim;
    }, Commit::write_nosync);
}

std::vector<std::uint64_t> QueueStore::write_results(std::span<const Outcome> outcomes) {
    // write_nosync: in the log (and so safe from a crash of this process) when the
    // commit returns, on the disk within Environment::kLogFlushInterval.
    auto done = env_->transact([&](DbTxn* txn) {
        std::map<std::uint64_t, std::optional<Job>> jobs;  // shared locks: claims read them too
        for (const auto& o : outcomes) jobs.try_emplace(o.job_id);
        for (auto& [id, job] : jobs) job = load_job(txn, id);
        struct Row {
            std::string before;             // as stored
            std::optional<Recipient> after; // nothing: gone (its job was deleted meanwhile)
        };
        std::map<std::string, Row> rows;  // in key order
        for (const auto& o : outcomes) rows.try_emplace(recipient_key(o.job_id, o.seq));
        for (auto& [key, row] : rows) {
            auto data = env_->get(env_->recipients(), txn, key, DB_RMW);
            if (!data) continue;
            row.after = Recipient::decode(key, *data);
            row.before = std::move(*data);
        }
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::array<std::int64_t, kStateCount>> deltas;
        std::vector<Suppression> suppressions;
        std::set<std::uint64_t> touched;
        for (const auto& o : outcomes) {
            auto& row = rows[recipient_key(o.job_id, o.seq)];
            if (!row.after) continue;
            Recipient& r = *row.after;
            RcptState state = o.state;
            // A held job keeps what comes back undecided; what the wire decided stands.
            if (const auto& job = jobs[o.job_id]; job && job->state == JobState::held && is_pending(state))
                state = RcptState::held;
            if (r.state != state)
                move_count(deltas.try_emplace({r.job_id, r.message_id}, no_delta()).first->second, r.state, state);
            r.state = state;
            if (o.count_attempt) {
                r.attempts++;
                r.last_attempt = o.attempt_time;
                r.reply_code = o.reply_code;
                r.dsn = o.dsn;
                r.reply_text = o.reply_text;
                r.host = o.host;
                r.path = o.path;
            }
            r.next_attempt = is_pending(state) ? o.next_attempt : 0;
            if (o.suppress) {
                std::string address = to_lower(r.address);
                suppressions.push_back(Suppression{address, "bounce", o.attempt_time, r.job_id});
            }
            touched.insert(r.job_id);
        }
        std::vector<std::string> encoded;
        for (auto& [key, row] : rows) {
            if (!row.after) continue;
            encoded.push_back(row.after->encode());
            env_->put(env_->recipients(), txn, key, encoded.back());
        }
        for (const auto& sup : suppressions) add_suppression(txn, sup);
        // A recipient in flight has no due entry (its claim took it out); one not
        // in flight (changed by an admin meanwhile) may still have its old one.
        std::vector<bool> was_in_flight;
        for (const auto& [key, row] : rows) was_in_flight.push_back(env_->del(env_->inflight(), txn, key));
        // A recipient of the job still in flight is pending: one look at the
        // in-flight table spares summing the counters of every message of a big job.
        std::set<std::uint64_t> busy;
        for (auto id : touched)
            scan(env_->inflight(), txn, job_key(id), job_key(id), [&](const std::string&, const std::string&) {
                busy.insert(id);
                return false;
            });
        auto enc = encoded.begin();
        auto flight = was_in_flight.begin();
        for (auto& [key, row] : rows) {
            const bool in_flight = *flight++;
            if (!row.after) continue;
            auto old_due = in_flight ? std::nullopt : Recipient::due_key(key, row.before);
            auto new_due = Recipient::due_key(key, *enc++);
            if (old_due && old_due != new_due) env_->del(env_->due(), txn, *old_due);
            if (new_due && new_due != old_due) env_->put(env_->due(), txn, *new_due, key);
        }
        for (const auto& [k, d] : deltas) add_counts(txn, k.first, k.second, d);
        std::vector<std::uint64_t> finished;
        for (auto id : touched) {
            auto& job = jobs[id];
            // A keyed job still open for more messages is done only once closed (close_idle_jobs).
            if (!job || job->state != JobState::active || busy.count(id) || (job->open_ms && !job->closed)) continue;
            sum_counts(txn, *job);
            if (job->pending() == 0) {
                // The one write to a job here, when it finishes (an upgrade; see the lock order).
                auto fresh = load_job(txn, id, DB_RMW);
                if (!fresh || fresh->state != JobState::active) continue;
                fresh->state = JobState::done;
                save_job(txn, *fresh);
                finished.push_back(id);
            }
        }
        return finished;
    }, Commit::write_nosync);
    env_->maybe_checkpoint();
    return done;
}

std::vector<std::uint64_t> QueueStore::held_jobs() {
    return env_->transact([&](DbTxn* txn) {
        std::vector<std::uint64_t> out;
        scan(env_->jobs(), txn, std::string(), std::string(), [&](const std::string& k, const std::string& d) {
            if (Job::decode(get_u64(k, 0), d).state == JobState::held) out.push_back(get_u64(k, 0));
            return true;
        });
        return out;
    });
}

std::optional<std::int64_t> QueueStore::next_due() {
    expand_packed();
    return env_->transact([&](DbTxn* txn) -> std::optional<std::int64_t> {
        CursorGuard g;
        env_->due().cursor(txn, &g.c, 0);
        OwnedDbt k;
        Dbt d;
        d.set_flags(DB_DBT_PARTIAL);
        d.set_dlen(0);
        int rc = g.c->get(&k, &d, DB_FIRST);
        std::optional<std::int64_t> out;
        if (rc == 0) out = static_cast<std::int64_t>(get_u64(str(k), 0));
        return out;
    });
}

}  // namespace mxlane::store
