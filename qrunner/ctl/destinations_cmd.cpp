// destinations_cmd: mxlanectl destinations [--json], pause NAME [--for DURATION], resume NAME.
#include <iostream>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "libshared/params.hpp"
#include "libshared/printable.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/destinations.hpp"

namespace mxlane::ctl {
namespace {

using store::QueueStore;

// paused_until for people: ISO time, "-" when not paused, "until resumed".
std::string until_text(std::int64_t until) {
    if (until == 0) return "-";
    if (until == QueueStore::kForever) return "until resumed";
    return iso_time(until);
}

// paused_until in JSON: ISO time, null when not paused, "forever" until resumed.
json::value until_json(std::int64_t until) {
    if (until == 0) return nullptr;
    if (until == QueueStore::kForever) return "forever";
    return json::value(iso_time(until));
}

std::string name_arg(Context& c, const char* command) {
    if (c.args.empty()) throw UsageError(std::string(command) + " needs a destination or provider name");
    return to_lower(c.args[0]);
}

}  // namespace

int cmd_destinations(Context& c) {
    c.no_more_args();
    const std::int64_t now = store::now_ms();
    Snapshot snap = read_snapshot(c.cfg.get("queue_directory"), now);
    auto rows = merge_destinations(snap, c.store().suspensions(now), now);
    if (c.json) {
        json::array all;
        for (const auto& r : rows)
            all.push_back(json::object{{"name", r.name},
                                       {"kind", r.kind},
                                       {"provider", r.provider},
                                       {"mx", r.mx},
                                       {"queued", r.queued},
                                       {"inflight", r.inflight},
                                       {"connections", r.connections},
                                       {"limit", r.limit},
                                       {"paused_until", until_json(r.paused_until)},
                                       {"reason", r.reason},
                                       {"last_reply", r.last_reply}});
        std::cout << json::serialize(std::move(all)) << "\n";
        return 0;
    }
    if (rows.empty()) {
        std::cout << (snap.live ? "No destinations queued or paused\n"
                                : "No destinations paused (no running qrunner reports its destinations)\n");
        return 0;
    }
    Table t({"NAME", "MX", "QUEUED", "INFLIGHT", "CONNECTIONS", "LIMIT", "PAUSED_UNTIL", "REASON", "LAST_REPLY"});
    for (const auto& r : rows)
        t.add({r.name, r.mx.empty() ? "-" : r.mx, std::to_string(r.queued), std::to_string(r.inflight),
               std::to_string(r.connections), std::to_string(r.limit), until_text(r.paused_until),
               r.reason.empty() ? "-" : r.reason, r.last_reply.empty() ? "-" : r.last_reply});
    std::cout << t.str();
    return 0;
}

int cmd_pause(Context& c) {
    auto duration = c.take_option("--for");
    std::string name = name_arg(c, "pause");
    c.no_more_args(1);
    if (!valid_destination_name(name))
        throw UsageError("not a destination or provider name: " + c.args[0] +
                         " (a domain such as example.test, or mx:.suffix / mx:host)");
    const std::int64_t now = store::now_ms();
    std::int64_t until = QueueStore::kForever;
    if (duration) {
        std::int64_t seconds = 0;
        if (!parse_duration(*duration, seconds) || seconds == 0)
            throw UsageError("--for needs a duration (a number with s, m, h or d): " + *duration);
        if (seconds > (QueueStore::kForever - 1 - now) / 1000) throw UsageError("--for is too long: " + *duration);
        until = now + seconds * 1000;
    }
    const std::string reason = "paused by mxlanectl";
    c.store().suspend(name, until, reason, now);
    if (c.json) {
        std::cout << json::serialize(json::object{
                         {"name", name}, {"paused_until", until_json(until)}, {"reason", reason}})
                  << "\n";
    } else {
        std::cout << printable(name) << ": paused " << (until == QueueStore::kForever ? "until resumed" : "until " + iso_time(until))
                  << "\n";
    }
    return 0;
}

int cmd_resume(Context& c) {
    std::string name = name_arg(c, "resume");
    c.no_more_args(1);
    const std::int64_t now = store::now_ms();
    std::optional<std::int64_t> until;
    for (const auto& s : c.store().suspensions(now))
        if (s.name == to_lower(name)) until = s.until;
    if (!c.store().resume(name)) throw UsageError(name + " is not paused");
    // What a qrunner put back in the queue until the suspension's end is due now.
    const std::size_t due = until ? c.store().release_parked(*until, now) : 0;
    if (c.json)
        std::cout << json::serialize(json::object{{"name", name}, {"resumed", true}, {"due", due}}) << "\n";
    else
        std::cout << printable(name) << ": resumed" << (due ? ", " + std::to_string(due) + " recipients due now" : "")
                  << "\n";
    return 0;
}

}  // namespace mxlane::ctl
