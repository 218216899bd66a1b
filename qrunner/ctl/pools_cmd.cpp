// pools_cmd: mxlanectl pools [--json] (sending addresses, warm-up, throttles, suspensions) and pools warmup ADDRESS DAY.
#include <iostream>

#include "libshared/json.hpp"
#include "libshared/params.hpp"
#include "libshared/printable.hpp"
#include "libshared/source_pools.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/destinations.hpp"
#include "qrunner/redis_client.hpp"
#include "qrunner/shared_warmup.hpp"
#include "qrunner/warmup.hpp"

namespace mxlane::ctl {
namespace {

using store::QueueStore;

SourcePools read_pools(const Context& c) {
    const std::string file = c.cfg.get("source_pools");
    if (file.empty()) throw UsageError("source_pools is not set: mail goes from the address the system picks");
    try {
        return load_source_pools(file);
    } catch (const std::runtime_error& e) {
        throw ConfigError(e.what());
    }
}

// One address towards one provider, as the store has it today, with the
// running qrunner's shaping of it (its snapshot) when there is one.
struct PoolRow {
    const SourceAddress* address = nullptr;
    std::int64_t day = 1;        // of its warm-up (1: never used yet, or first used today)
    bool used = false;
    std::string provider;        // "" when it sent to none today
    std::int64_t sent = 0, cap = qrunner::kNoCap;
    std::int64_t suspended_until = 0;
    std::string reason;
    std::optional<std::int64_t> connections;  // none: no running qrunner reports its sources
    std::int64_t throttle_per_hour = 0, throttled_until = 0;
};

// What the running qrunner holds in memory over the store's rows: a
// source-scope throttle, a pause not (yet) in the store, its connections.
void merge_source(PoolRow& r, const SourceRow& s, std::int64_t now) {
    r.connections = s.connections;
    if (s.throttled_until > now) {
        r.throttle_per_hour = s.throttle_per_hour;
        r.throttled_until = s.throttled_until;
        if (r.reason.empty()) r.reason = s.reason;
    }
    if (r.suspended_until == 0 && s.paused_until > now) {
        r.suspended_until = s.paused_until;
        if (r.reason.empty()) r.reason = s.reason;
    }
}

std::vector<PoolRow> pool_rows(Context& c, const SourcePools& pools) {
    const std::int64_t now = store::now_ms(), today = qrunner::epoch_day(now);
    const auto schedule = qrunner::WarmupSchedule::parse(c.cfg.list("warmup_schedule"));
    const auto first = c.store().warmup_first_days();
    const auto counts = c.store().warmup_counts();
    const auto suspensions = c.store().suspensions(now);
    const Snapshot snap = read_snapshot(c.cfg.get("queue_directory"), now);
    std::vector<PoolRow> rows;
    for (const auto& a : pools.addresses) {
        PoolRow base;
        base.address = &a;
        if (auto it = first.find(a.address); it != first.end()) {
            base.used = true;
            base.day = qrunner::life_day(it->second, today);
        }
        base.cap = schedule.cap(base.day);
        std::map<std::string, PoolRow> by_provider;
        for (const auto& n : counts)
            if (n.address == a.address && n.day == base.day) {
                PoolRow& r = by_provider.try_emplace(n.provider, base).first->second;
                r.provider = n.provider;
                r.sent = n.sent;
            }
        const std::string prefix = "src:" + a.address + "/";
        for (const auto& s : suspensions)
            if (s.name.starts_with(prefix)) {
                PoolRow& r = by_provider.try_emplace(s.name.substr(prefix.size()), base).first->second;
                r.provider = s.name.substr(prefix.size());
                r.suspended_until = s.until;
                r.reason = s.reason;
            }
        if (snap.live) {
            if (by_provider.empty()) base.connections = 0;
            for (auto& [name, r] : by_provider) r.connections = 0;
            for (const auto& s : snap.sources)
                if (s.address == a.address) {
                    PoolRow& r = by_provider.try_emplace(s.provider, base).first->second;
                    r.provider = s.provider;
                    merge_source(r, s, now);
                }
        }
        if (by_provider.empty()) rows.push_back(base);
        for (auto& [name, r] : by_provider) rows.push_back(std::move(r));
    }
    return rows;
}

json::value cap_json(std::int64_t cap) { return cap == qrunner::kNoCap ? json::value(nullptr) : json::value(cap); }
std::string cap_text(std::int64_t cap) { return cap == qrunner::kNoCap ? "-" : std::to_string(cap); }

json::value count_json(const std::optional<std::int64_t>& n) { return n ? json::value(*n) : json::value(nullptr); }

json::value until_json(std::int64_t until) {
    if (until == 0) return nullptr;
    if (until == QueueStore::kForever) return "forever";
    return json::value(iso_time(until));
}

// mxlanectl pools warmup ADDRESS DAY: the address is on day DAY of its warm-up
// from now on (an address warmed up elsewhere, or one to start again at 1):
// its first use moves to DAY - 1 days before today, and today's counts start anew.
// Mail waiting for the next day (over a cap: put back until the next UTC midnight)
// is due now, as the new day would make it. With shared_state the first day in
// Redis, which every host's count goes by, moves too.
int pools_warmup(Context& c, const SourcePools& pools) {
    c.no_more_args(3);
    if (c.args.size() != 3) throw UsageError("usage: pools warmup ADDRESS DAY");
    const SourceAddress* a = pools.find(canonical_address(c.args[1]));
    if (!a) throw UsageError("not an address of source_pools: " + c.args[1]);
    std::int64_t day = 0;
    if (!parse_integer(c.args[2], day) || day < 1 || day > 100000)
        throw UsageError("DAY must be a whole number from 1: " + c.args[2]);
    const std::int64_t now = store::now_ms();
    const std::int64_t first_day = qrunner::epoch_day(now) - (day - 1);
    if (!c.cfg.get("shared_state").empty()) {
        const auto r = ask_shared_state(c.cfg, {"SET", qrunner::warmup_first_key(a->address), std::to_string(first_day)});
        if (!r || r->type == qrunner::RedisReply::Type::error)
            throw std::runtime_error("shared_state " + c.cfg.get("shared_state") +
                                     " did not take the new first day; nothing changed");
    }
    c.store().set_warmup_first_day(a->address, first_day);
    const std::size_t due = c.store().release_parked(qrunner::next_day_ms(now), now);
    if (c.json)
        std::cout << json::serialize(json::object{{"address", a->address}, {"day", day}, {"due", due}}) << "\n";
    else
        std::cout << a->address << ": day " << day << " of its warm-up from now on"
                  << (due ? ", " + std::to_string(due) + " recipients waiting for the next day due now" : "") << "\n";
    return 0;
}

}  // namespace

int cmd_pools(Context& c) {
    const SourcePools pools = read_pools(c);
    if (!c.args.empty() && c.args[0] == "warmup") return pools_warmup(c, pools);
    c.no_more_args();
    const auto rows = pool_rows(c, pools);
    if (c.json) {
        json::array all;
        for (const auto& r : rows)
            all.push_back(json::object{{"pool", r.address->pool},
                                       {"address", r.address->address},
                                       {"helo", r.address->helo},
                                       {"day", r.day},
                                       {"used", r.used},
                                       {"provider", r.provider.empty() ? json::value(nullptr) : json::value(r.provider)},
                                       {"sent_today", r.sent},
                                       {"cap", cap_json(r.cap)},
                                       {"connections", count_json(r.connections)},
                                       {"throttle_per_hour", r.throttle_per_hour ? json::value(r.throttle_per_hour)
                                                                                 : json::value(nullptr)},
                                       {"throttled_until", until_json(r.throttled_until)},
                                       {"suspended_until", until_json(r.suspended_until)},
                                       {"reason", r.reason}});
        std::cout << json::serialize(std::move(all)) << "\n";
        return 0;
    }
    Table t({"POOL", "ADDRESS", "HELO", "DAY", "PROVIDER", "SENT_TODAY", "CAP", "CONNECTIONS", "THROTTLE",
             "THROTTLED_UNTIL", "SUSPENDED_UNTIL", "REASON"});
    for (const auto& r : rows)
        t.add({r.address->pool, r.address->address, r.address->helo, std::to_string(r.day) + (r.used ? "" : " (unused)"),
               r.provider.empty() ? "-" : r.provider, std::to_string(r.sent), cap_text(r.cap),
               r.connections ? std::to_string(*r.connections) : "-",
               r.throttle_per_hour ? std::to_string(r.throttle_per_hour) + "/h" : "-",
               r.throttled_until ? iso_time(r.throttled_until) : "-",
               r.suspended_until == 0                   ? "-"
               : r.suspended_until == QueueStore::kForever ? "until resumed"
                                                          : iso_time(r.suspended_until),
               r.reason.empty() ? "-" : r.reason});
    std::cout << t.str();
    return 0;
}

}  // namespace mxlane::ctl
