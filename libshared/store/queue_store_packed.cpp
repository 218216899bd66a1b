// queue_store_packed: a message's recipients packed in one record at intake, expanded into recipient records later.
//
// The milter's commit is what the host MTA waits for, once per message. Writing
// a recipient record and a due entry per recipient there made it two B-tree
// writes per recipient; packed, it is the message, its text, one packed record
// and its counters, whatever the count. The expansion (recipient records, due
// entries, the packed record deleted) is one transaction, so a crash leaves
// either the packed record or the expanded recipients, never both nor neither.
//
// Who expands: every store call that reads or changes recipients by record
// expands first (claim_due, next_due, each_recipient, recipient, the admin
// rewrites, complaint); remove_job deletes packed records as it deletes the rest.
// So only this file and the intake know packed records exist: every reader of
// recipients (mxlanectl, reports, the scheduler) sees them as before, which is
// less to get wrong than teaching each reader a second representation. The
// counters are written at intake as for expanded recipients (all queued), so
// `mxlanectl jobs` and a job's finished test need no expansion at all.
#include "libshared/log.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

namespace {

constexpr std::uint8_t kPackedV1 = 1;

struct Packed {
    std::int64_t queued_at = 0;
    std::vector<NewRecipient> rcpts;
};

std::string encode_packed(std::span<const NewRecipient> rcpts, std::int64_t queued_at) {
    Encoder e;
    e.u8(kPackedV1).i64(queued_at).u32(static_cast<std::uint32_t>(rcpts.size()));
    for (const auto& r : rcpts) e.str(r.address).strs(r.fields);
    return e.take();
}

Packed decode_packed(std::string_view data) {
    Decoder d(data);
    if (auto v = d.u8(); v != kPackedV1)
        throw CodecError("packed recipients record of unknown version " + std::to_string(v));
    Packed p;
    p.queued_at = d.i64();
    std::uint32_t n = d.u32();
    p.rcpts.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        NewRecipient r;
        r.address = d.str();
        r.fields = d.strs();
        p.rcpts.push_back(std::move(r));
    }
    return p;
}

// How many recipients a packed record holds, without decoding it: version (1) +
// queued_at (8), then the count (4, big-endian); a short record counts 0.
std::size_t packed_count(std::string_view packed) {
    if (packed.size() < 13) return 0;
    std::size_t n = 0;
    for (std::size_t i = 9; i < 13; ++i) n = (n << 8) | static_cast<unsigned char>(packed[i]);
    return n;
}

}  // namespace

void QueueStore::pack_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                                 std::span<const NewRecipient> rcpts, std::int64_t now) {
    const std::string key = message_key(job_id, message_id);
    env_->put(env_->packed(), txn, key, encode_packed(rcpts, now));
    MessageCounts mc;
    mc.next_index = rcpts.size();
    mc.counts[static_cast<int>(RcptState::queued)] = rcpts.size();
    env_->put(env_->counts(), txn, key, mc.encode());
}

std::size_t QueueStore::expand_packed(std::optional<std::uint64_t> job_id) {
    return expand_packed_under(job_id ? job_key(*job_id) : std::string());
}

std::size_t QueueStore::expand_packed_under(const std::string& prefix) {
    // Most calls find nothing (each claim, each report's recipient): a look without
    // locks kept, so that they do not queue behind the milter's intakes for the
    // write lock on packed.db's last page.
    bool any = false;
    env_->transact([&](DbTxn* txn) {
        scan(env_->packed(), txn, prefix, prefix, [&](const std::string&, const std::string&) {
            any = true;
            return false;
        }, DB_READ_COMMITTED);
    }, Commit::write_nosync);
    if (!any) return 0;
    std::size_t total = 0;
    for (;;) {
        // write_nosync: the log reaches the disk in order, so a machine crash that
        // loses an expansion loses every claim after it too, and the packed record
        // is back. Packed records go first: the lock order is packed -> recipients -> due.
        auto [n, more] = env_->transact([&](DbTxn* txn) {
            std::vector<std::pair<std::string, std::string>> rows;
            std::size_t rcpts = 0;
            scan(env_->packed(), txn, prefix, prefix, [&](const std::string& k, const std::string& d) {
                rows.emplace_back(k, d);
                rcpts += packed_count(d);
                return rcpts < kBatch;
            }, DB_RMW);
            for (const auto& [k, d] : rows) {
                Packed p;
                try {
                    p = decode_packed(d);
                } catch (const CodecError& e) {
                    // Left as it is (its counters say queued): the administrator sees it in the log.
                    log::error(format_job_id(get_u64(k, 0)) + ": message " + std::to_string(get_u64(k, 8)) +
                               ": its packed recipients cannot be read from the queue store (" + e.what() + ")");
                    continue;
                }
                put_new_recipients(txn, get_u64(k, 0), get_u64(k, 8), 0, p.rcpts, p.queued_at);
                env_->del(env_->packed(), txn, k);
            }
            return std::make_pair(rcpts, rcpts >= kBatch);
        }, Commit::write_nosync);
        total += n;
        if (!more) return total;
    }
}

}  // namespace mxlane::store
