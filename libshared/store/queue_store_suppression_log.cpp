// queue_store_suppression_log: the suppression list's writes and their numbered log, read by change number.
#include "libshared/address.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

namespace {

std::string log_key(std::uint64_t number) {
    std::string k;
    put_u64(k, number);  // big-endian: the B-tree keeps the changes in order
    return k;
}

// The last change's number (0: none), write-locking the log's end when flags has DB_RMW.
std::uint64_t last_number(Db& log, DbTxn* txn, std::uint32_t flags) {
    CursorGuard g;
    log.cursor(txn, &g.c, 0);
    OwnedDbt key, data;
    if (g.c->get(&key, &data, DB_LAST | flags) != 0) return 0;
    return get_u64(str(key), 0);
}

}  // namespace

bool QueueStore::add_suppression(DbTxn* txn, const Suppression& s, bool logged) {
    if (env_->get(env_->suppressed(), txn, s.address, DB_RMW)) return false;
    env_->put(env_->suppressed(), txn, s.address, s.encode());
    if (logged) log_suppression(txn, true, s.address, s.reason);
    return true;
}

bool QueueStore::remove_suppression(DbTxn* txn, const std::string& address, bool logged) {
    if (!env_->del(env_->suppressed(), txn, address)) return false;
    if (logged) log_suppression(txn, false, address, "");
    return true;
}

// One entry after the last (whose page stays write-locked to the commit, so
// that writers number their changes one after the other); the one
// kSuppressionLogKeep before goes, so the log never grows beyond that.
void QueueStore::log_suppression(DbTxn* txn, bool added, const std::string& address, const std::string& reason) {
    const std::uint64_t number = last_number(env_->suppressed_log(), txn, DB_RMW) + 1;
    env_->put(env_->suppressed_log(), txn, log_key(number), (added ? "+" : "-") + address + (added ? "\n" + reason : ""));
    if (number > kSuppressionLogKeep) env_->del(env_->suppressed_log(), txn, log_key(number - kSuppressionLogKeep));
}

std::uint64_t QueueStore::suppression_log_end() {
    return env_->transact([&](DbTxn* txn) { return last_number(env_->suppressed_log(), txn, 0); });
}

std::optional<std::vector<QueueStore::SuppressionChange>> QueueStore::suppression_changes(std::uint64_t after,
                                                                                         std::size_t max) {
    return env_->transact([&](DbTxn* txn) -> std::optional<std::vector<SuppressionChange>> {
        std::vector<SuppressionChange> out;
        bool gap = false;
        scan(env_->suppressed_log(), txn, log_key(after + 1), std::string(), [&](const std::string& k, const std::string& d) {
            SuppressionChange c;
            c.number = get_u64(k, 0);
            if (c.number != after + 1 + out.size() || d.empty()) {
                gap = true;  // the next one is no longer kept
                return false;
            }
            c.added = d[0] == '+';
            const auto nl = d.find('\n');
            c.address = d.substr(1, nl == std::string::npos ? std::string::npos : nl - 1);
            if (nl != std::string::npos) c.reason = d.substr(nl + 1);
            out.push_back(std::move(c));
            return out.size() < max;
        });
        if (gap || (out.empty() && last_number(env_->suppressed_log(), txn, 0) < after)) return std::nullopt;
        return out;
    });
}

bool QueueStore::suppress_unlogged(const std::string& address, const std::string& reason, std::int64_t now) {
    return env_->transact([&](DbTxn* txn) {
        const std::string key = to_lower(address);
        return add_suppression(txn, Suppression{key, reason, now, 0}, false);
    });
}

bool QueueStore::unsuppress_unlogged(const std::string& address) {
    return env_->transact([&](DbTxn* txn) { return remove_suppression(txn, to_lower(address), false); });
}

}  // namespace mxlane::store
