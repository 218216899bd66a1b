// queue_store_admin: the queue store's admin operations (flush, hold, release, delete) and the suppression list.
#include "libshared/address.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

#include <map>

namespace mxlane::store {

using namespace detail;

// ---------------------------------------------------------------- admin

std::size_t QueueStore::rewrite_recipients(std::uint64_t job_id, const std::function<bool(DbTxn*, Recipient&)>& change) {
    expand_packed(job_id);
    std::string prefix = job_key(job_id), start = prefix;
    std::size_t changed = 0;
    for (;;) {
        auto [n, last] = env_->transact([&](DbTxn* txn) {
            std::vector<std::pair<std::string, std::string>> rows;
            scan(env_->recipients(), txn, start, prefix, [&](const std::string& k, const std::string& d) {
                rows.emplace_back(k, d);
                return rows.size() < kBatch;
            }, DB_RMW);
            std::map<std::uint64_t, std::array<std::int64_t, kStateCount>> deltas;
            std::size_t count = 0;
            for (auto& [k, d] : rows) {
                Recipient r = Recipient::decode(k, d);
                RcptState before = r.state;
                if (!change(txn, r)) continue;
                save_recipient(txn, k, d, r.encode());
                if (r.state != before) {
                    move_count(deltas.try_emplace(r.message_id, no_delta()).first->second, before, r.state);
                }
                ++count;
            }
            for (const auto& [msg, d] : deltas) add_counts(txn, job_id, msg, d);
            return std::make_pair(count, rows.size() < kBatch ? std::string() : rows.back().first);
        });
        changed += n;
        if (last.empty()) return changed;
        start = last;
        start.push_back('\0');
    }
}

namespace {
constexpr const char* kFlushGeneration = "flush_generation";
}

std::uint64_t QueueStore::flush_generation() {
    return env_->transact([&](DbTxn* txn) -> std::uint64_t {
        auto v = env_->get(env_->meta(), txn, kFlushGeneration);
        return v ? std::stoull(*v) : 0;
    });
}

std::size_t QueueStore::flush(std::optional<std::uint64_t> job_id, std::int64_t now) {
    // Tells a running qrunner (it polls this) to retry unreachable destinations at once.
    env_->transact([&](DbTxn* txn) {
        auto v = env_->get(env_->meta(), txn, kFlushGeneration, DB_RMW);
        env_->put(env_->meta(), txn, kFlushGeneration, std::to_string((v ? std::stoull(*v) : 0) + 1));
    });
    std::vector<std::uint64_t> ids;
    if (job_id) ids.push_back(*job_id);
    else
        for (const auto& j : jobs()) ids.push_back(j.id);
    std::size_t n = 0;
    for (auto id : ids)
        n += rewrite_recipients(id, [&](DbTxn* txn, Recipient& r) {
            if (r.state != RcptState::deferred || r.next_attempt <= now) return false;
            if (env_->get(env_->inflight(), txn, r.key())) return false;  // in delivery now; its result decides
            r.next_attempt = now;
            return true;
        });
    return n;
}

std::size_t QueueStore::hold(std::uint64_t job_id, const std::string& reason) {
    env_->transact([&](DbTxn* txn) {
        auto job = load_job(txn, job_id, DB_RMW);
        if (!job) throw StoreError("no such job: " + format_job_id(job_id));
        job->state = JobState::held;
        job->hold_reason = reason;
        save_job(txn, *job);
    });
    return rewrite_recipients(job_id, [](DbTxn*, Recipient& r) {
        if (!is_pending(r.state)) return false;
        r.state = RcptState::held;
        return true;
    });
}

std::size_t QueueStore::release(std::uint64_t job_id, std::int64_t now) {
    env_->transact([&](DbTxn* txn) {
        auto job = load_job(txn, job_id, DB_RMW);
        if (!job) throw StoreError("no such job: " + format_job_id(job_id));
        if (job->state == JobState::held) job->state = JobState::active;
        job->hold_reason.clear();
        save_job(txn, *job);
    });
    return rewrite_recipients(job_id, [&](DbTxn* txn, Recipient& r) {
        if (r.state != RcptState::held) return false;
        // Held while in delivery: its result decides (the job is active again), or,
        // should this qrunner die, recover_inflight makes it due.
        if (env_->get(env_->inflight(), txn, r.key())) return false;
        r.state = r.attempts ? RcptState::deferred : RcptState::queued;
        r.next_attempt = now;
        return true;
    });
}

std::size_t QueueStore::inflight_count(std::uint64_t job_id) {
    return env_->transact([&](DbTxn* txn) {
        std::size_t n = 0;
        std::string prefix = job_id ? job_key(job_id) : std::string();
        scan(env_->inflight(), txn, prefix, prefix, [&](const std::string&, const std::string&) {
            ++n;
            return true;
        });
        return n;
    });
}

void QueueStore::remove_job(std::uint64_t job_id) {
    std::string prefix = job_key(job_id);
    // Recipients first (packed ones, then records with their due entries), in batches
    // (a big job does not need one huge transaction); the job record goes last, so an
    // interrupted delete can simply be run again. Packed records go before the records:
    // one expanded meanwhile has its records deleted next.
    for (Db* db : {&env_->packed(), &env_->recipients(), &env_->inflight()}) {
        for (;;) {
            std::size_t n = env_->transact([&](DbTxn* txn) {
                std::vector<std::pair<std::string, std::string>> rows;
                scan(*db, txn, prefix, prefix, [&](const std::string& k, const std::string& d) {
                    rows.emplace_back(k, d);
                    return rows.size() < kBatch;
                }, DB_RMW);
                for (const auto& [k, d] : rows) {
                    if (db == &env_->recipients())
                        if (auto due = Recipient::due_key(k, d)) env_->del(env_->due(), txn, *due);
                    env_->del(*db, txn, k);
                }
                return rows.size();
            });
            if (n < kBatch) break;
        }
    }
    for (const auto& m : messages(job_id)) {
        env_->transact([&](DbTxn* txn) {
            for (std::uint32_t i = 0; i < m.chunks; ++i) env_->del(env_->bodies(), txn, body_key(m.id, i));
            env_->del(env_->messages(), txn, message_key(job_id, m.id));
            env_->del(env_->counts(), txn, message_key(job_id, m.id));
        });
    }
    env_->transact([&](DbTxn* txn) {
        auto job = load_job(txn, job_id, DB_RMW);
        if (job && !job->name.empty()) {
            auto mapped = env_->get(env_->job_names(), txn, job->name, DB_RMW);
            if (mapped && get_u64(*mapped, 0) == job_id) env_->del(env_->job_names(), txn, job->name);
        }
        env_->del(env_->jobs(), txn, job_key(job_id));
    });
    forget_complaints(job_id);
}

void QueueStore::set_notified(std::uint64_t job_id) {
    env_->transact([&](DbTxn* txn) {
        auto job = load_job(txn, job_id, DB_RMW);
        if (!job) return;
        job->notified = true;
        save_job(txn, *job);
    });
}

// ---------------------------------------------------------------- suppression

bool QueueStore::suppress(const std::string& address, const std::string& reason, std::int64_t now,
                          std::uint64_t job) {
    return env_->transact([&](DbTxn* txn) {
        const std::string key = to_lower(address);
        return add_suppression(txn, Suppression{key, reason, now, job});
    });
}

bool QueueStore::unsuppress(const std::string& address) {
    return env_->transact([&](DbTxn* txn) { return remove_suppression(txn, to_lower(address)); });
}

bool QueueStore::is_suppressed(const std::string& address) {
    return env_->transact([&](DbTxn* txn) { return env_->get(env_->suppressed(), txn, to_lower(address)).has_value(); });
}

std::vector<QueueStore::Suppression> QueueStore::suppressions() {
    return env_->transact([&](DbTxn* txn) {
        std::vector<Suppression> out;
        scan(env_->suppressed(), txn, std::string(), std::string(), [&](const std::string& k, const std::string& d) {
            out.push_back(Suppression::decode(k, d));
            return true;
        });
        return out;
    });
}

std::optional<QueueStore::Suppression> QueueStore::suppression(const std::string& address) {
    return env_->transact([&](DbTxn* txn) -> std::optional<Suppression> {
        const std::string key = to_lower(address);
        auto data = env_->get(env_->suppressed(), txn, key);
        if (!data) return std::nullopt;
        return Suppression::decode(key, *data);
    });
}

std::string suppression_summary(const std::map<std::string, std::uint64_t>& by_reason) {
    std::uint64_t total = 0;
    std::string parts;
    for (const auto& [reason, n] : by_reason) {
        total += n;
        parts += (parts.empty() ? "" : ", ") + reason + " " + std::to_string(n);
    }
    return std::to_string(total) + " (" + parts + ")";
}

std::map<std::string, std::uint64_t> QueueStore::suppressions_of(std::uint64_t job_id) {
    return env_->transact([&](DbTxn* txn) {
        std::map<std::string, std::uint64_t> out;
        for (auto reason : kSuppressionReasons) out[std::string(reason)] = 0;
        scan(env_->suppressed(), txn, std::string(), std::string(), [&](const std::string& k, const std::string& d) {
            if (auto s = Suppression::decode(k, d); s.job == job_id) ++out[s.reason];
            return true;
        });
        return out;
    });
}

}  // namespace mxlane::store
