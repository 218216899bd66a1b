// queue_store_warmup: each sending address's first use and its messages per provider on its current day (warmup_schedule), in meta.
#include "libshared/address.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

namespace {

// meta keys: "warmup:first:" + address -> first day (days since the epoch, UTC);
// "warmup:count:" + address + "/" + provider -> life day, messages taken on it.
// Only meta is touched, each time alone (see the lock order in environment.hpp).
const std::string kFirstPrefix = "warmup:first:";
const std::string kCountPrefix = "warmup:count:";

std::optional<std::int64_t> decode_day(std::string_view data) {
    try {
        Decoder dec(data);
        return dec.i64();
    } catch (const CodecError&) {
        return std::nullopt;  // an undecodable record counts as none: the address starts on day 1
    }
}

}  // namespace

void QueueStore::set_warmup_first_day(const std::string& address, std::int64_t day) {
    Encoder e;
    e.i64(day);
    const std::string value = e.take();
    env_->transact([&](DbTxn* txn) { env_->put(env_->meta(), txn, kFirstPrefix + to_lower(address), value); });
}

std::map<std::string, std::int64_t> QueueStore::warmup_first_days() {
    std::map<std::string, std::int64_t> out;
    env_->transact([&](DbTxn* txn) {
        out.clear();
        scan(env_->meta(), txn, kFirstPrefix, kFirstPrefix, [&](const std::string& k, const std::string& d) {
            if (auto day = decode_day(d)) out[k.substr(kFirstPrefix.size())] = *day;
            return true;
        }, DB_READ_COMMITTED);
    });
    return out;
}

void QueueStore::set_warmup_count(const WarmupCount& c) {
    Encoder e;
    e.i64(c.day).i64(c.sent);
    const std::string value = e.take();
    const std::string key = kCountPrefix + to_lower(c.address) + "/" + to_lower(c.provider);
    env_->transact([&](DbTxn* txn) { env_->put(env_->meta(), txn, key, value); }, Commit::write_nosync);
}

std::vector<QueueStore::WarmupCount> QueueStore::warmup_counts() {
    std::vector<WarmupCount> out;
    env_->transact([&](DbTxn* txn) {
        out.clear();
        scan(env_->meta(), txn, kCountPrefix, kCountPrefix, [&](const std::string& k, const std::string& d) {
            std::string rest = k.substr(kCountPrefix.size());
            auto slash = rest.find('/');
            if (slash == std::string::npos) return true;
            try {
                Decoder dec(d);
                WarmupCount c{rest.substr(0, slash), rest.substr(slash + 1), 0, 0};
                c.day = dec.i64();
                c.sent = dec.i64();
                out.push_back(std::move(c));
            } catch (const CodecError&) {
            }
            return true;
        }, DB_READ_COMMITTED);
    });
    return out;
}

}  // namespace mxlane::store
