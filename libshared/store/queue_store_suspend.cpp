// queue_store_suspend: destinations and providers paused until a time, kept in the meta database.
#include "libshared/address.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

namespace {

// meta key: "suspend:" + lower-cased name; value: until, added, reason.
// Only meta is touched, each time alone (see the lock order in environment.hpp).
const std::string kSuspendPrefix = "suspend:";

std::string suspend_key(const std::string& name) { return kSuspendPrefix + to_lower(name); }

// nullopt for a record that cannot be decoded: it holds nothing back (resume removes it).
std::optional<QueueStore::Suspension> decode_suspension(const std::string& key, std::string_view data) {
    try {
        Decoder dec(data);
        QueueStore::Suspension s;
        s.name = key.substr(kSuspendPrefix.size());
        s.until = dec.i64();
        s.added = dec.i64();
        s.reason = dec.str();
        return s;
    } catch (const CodecError&) {
        return std::nullopt;
    }
}

}  // namespace

void QueueStore::suspend(const std::string& name, std::int64_t until, const std::string& reason, std::int64_t now) {
    const std::string key = suspend_key(name);
    Encoder e;
    e.i64(until).i64(now).str(reason);
    const std::string value = e.take();
    env_->transact([&](DbTxn* txn) { env_->put(env_->meta(), txn, key, value); });
}

bool QueueStore::resume(const std::string& name) {
    const std::string key = suspend_key(name);
    const std::int64_t now = now_ms();
    return env_->transact([&](DbTxn* txn) {
        auto v = env_->get(env_->meta(), txn, key, DB_RMW);
        if (!v) return false;
        env_->del(env_->meta(), txn, key);
        auto s = decode_suspension(key, *v);
        return !s || s->until > now;
    });
}

std::vector<QueueStore::Suspension> QueueStore::suspensions(std::int64_t now) {
    // Read without keeping locks (the qrunner asks every second); what ran out is
    // deleted afterwards in a transaction of its own, only when there is some.
    std::vector<Suspension> running;
    std::vector<std::string> ran_out;
    env_->transact([&](DbTxn* txn) {
        running.clear();
        ran_out.clear();
        scan(env_->meta(), txn, kSuspendPrefix, kSuspendPrefix, [&](const std::string& k, const std::string& d) {
            auto s = decode_suspension(k, d);
            if (s && s->until > now) running.push_back(std::move(*s));
            else if (s) ran_out.push_back(k);
            return true;
        }, DB_READ_COMMITTED);
    });
    if (ran_out.empty()) return running;
    try {
        env_->transact([&](DbTxn* txn) {
            for (const auto& k : ran_out) {
                // Still run out? (a pause may have replaced it since the read)
                auto v = env_->get(env_->meta(), txn, k, DB_RMW);
                if (!v) continue;
                if (auto s = decode_suspension(k, *v); s && s->until <= now) env_->del(env_->meta(), txn, k);
            }
        }, Commit::write_nosync);
    } catch (const StorePanic&) {
        throw;
    } catch (const StoreError&) {
        // Only tidying (a reader in mail_owner's group may not write): the next call tries again.
    }
    return running;
}

std::size_t QueueStore::release_parked(std::int64_t until, std::int64_t now) {
    std::size_t n = 0;
    for (const auto& j : jobs())
        n += rewrite_recipients(j.id, [&](DbTxn* txn, Recipient& r) {
            if (!is_pending(r.state) || r.next_attempt <= now) return false;
            if (r.next_attempt < until - kParkedSlackMs || r.next_attempt > until + kParkedSlackMs) return false;
            if (env_->get(env_->inflight(), txn, r.key())) return false;  // in delivery now
            r.next_attempt = now;
            return true;
        });
    return n;
}

}  // namespace mxlane::store
