// destinations: the rows of mxlanectl destinations: the qrunner's status snapshot merged with the store's suspensions.
#include "qrunner/ctl/destinations.hpp"

#include <signal.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cerrno>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "libshared/address.hpp"
#include "libshared/printable.hpp"

namespace mxlane::ctl {
namespace {

namespace bj = boost::json;

// A whole number that fits an int64 (Boost.JSON keeps large positive ones as uint64).
std::int64_t integer(const bj::value& v, const char* what) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(v.get_uint64());
    throw SnapshotError(std::string("\"") + what + "\" is not a whole number");
}

// Member `key` of o as a number; 0 when absent.
std::int64_t number_of(const bj::object& o, const char* key) {
    const bj::value* v = o.if_contains(key);
    return v ? integer(*v, key) : 0;
}

// Member `key` of o as a string; "" when absent.
std::string string_of(const bj::object& o, const char* key) {
    const bj::value* v = o.if_contains(key);
    if (!v) return {};
    if (!v->is_string()) throw SnapshotError(std::string("\"") + key + "\" is not a string");
    return std::string(v->get_string());
}

DestinationRow parse_row(const bj::value& v) {
    const bj::object* o = v.if_object();
    if (!o) throw SnapshotError("a destination is not an object");
    DestinationRow r;
    r.name = to_lower(string_of(*o, "name"));
    if (r.name.empty()) throw SnapshotError("a destination has no name");
    r.kind = string_of(*o, "kind");
    if (r.kind.empty()) r.kind = r.name.starts_with("mx:") ? "provider" : "destination";
    r.provider = string_of(*o, "provider");
    r.mx = string_of(*o, "mx");
    r.queued = number_of(*o, "queued");
    r.inflight = number_of(*o, "inflight");
    r.connections = number_of(*o, "connections");
    r.limit = number_of(*o, "limit");
    r.paused_until = number_of(*o, "paused_until");
    r.reason = string_of(*o, "reason");
    r.last_reply = string_of(*o, "last_reply");
    return r;
}

SourceRow parse_source(const bj::value& v) {
    const bj::object* o = v.if_object();
    if (!o) throw SnapshotError("a source is not an object");
    SourceRow r;
    r.address = string_of(*o, "address");
    r.provider = string_of(*o, "provider");
    if (r.address.empty() || r.provider.empty()) throw SnapshotError("a source has no address or provider");
    r.connections = number_of(*o, "connections");
    r.throttle_per_hour = number_of(*o, "throttle_per_hour");
    r.throttled_until = number_of(*o, "throttled_until");
    r.paused_until = number_of(*o, "paused_until");
    r.reason = string_of(*o, "reason");
    return r;
}

// Labels of letters, digits, '-' or '_' (or UTF-8 bytes), 1 to 63 each, 253 in all.
bool valid_host(std::string_view d, std::size_t min_labels) {
    if (d.empty() || d.size() > 253) return false;
    std::size_t label = 0, labels = 1;
    for (char c : d) {
        auto u = static_cast<unsigned char>(c);
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            ++labels;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || u >= 0x80)) return false;
        if (++label > 63) return false;
    }
    return label > 0 && labels >= min_labels;
}

}  // namespace

bool process_alive(long pid) {
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) return false;
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

Snapshot parse_snapshot(std::string_view text, std::int64_t now, const std::function<bool(long)>& alive) {
    boost::system::error_code ec;
    bj::value doc = bj::parse(bj::string_view(text.data(), text.size()), ec);
    if (ec) throw SnapshotError("not JSON: " + ec.message());
    const bj::object* top = doc.if_object();
    if (!top) throw SnapshotError("not a JSON object");
    const bj::value* pid = top->if_contains("pid");
    const bj::value* written = top->if_contains("written");
    const bj::value* list = top->if_contains("destinations");
    if (!pid || !written || !list) throw SnapshotError("\"pid\", \"written\" or \"destinations\" is missing");
    if (!list->is_array()) throw SnapshotError("\"destinations\" is not an array");
    Snapshot s;
    for (const auto& v : list->get_array()) s.rows.push_back(parse_row(v));
    if (const bj::value* sources = top->if_contains("sources")) {
        if (!sources->is_array()) throw SnapshotError("\"sources\" is not an array");
        for (const auto& v : sources->get_array()) s.sources.push_back(parse_source(v));
    }
    const std::int64_t at = integer(*written, "written"), process = integer(*pid, "pid");
    s.live = now - at <= kSnapshotFreshMs && alive(static_cast<long>(process));
    return s;
}

Snapshot read_snapshot(const std::string& queue_directory, std::int64_t now) {
    const std::string path = queue_directory + "/" + kSnapshotFile;
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return {};
    try {
        return parse_snapshot(text.str(), now);
    } catch (const SnapshotError& e) {
        std::cerr << "mxlanectl: ignoring " << printable(path) << ": " << printable(e.what()) << "\n";
        return {};
    }
}

std::vector<DestinationRow> merge_destinations(const Snapshot& snapshot,
                                               const std::vector<store::QueueStore::Suspension>& suspensions,
                                               std::int64_t now) {
    std::map<std::string, const store::QueueStore::Suspension*> by_name;
    for (const auto& s : suspensions) by_name[to_lower(s.name)] = &s;
    std::vector<DestinationRow> out;
    if (snapshot.live) {
        for (DestinationRow r : snapshot.rows) {
            if (r.paused_until != 0 && r.paused_until <= now) {  // ran out since the qrunner wrote it
                r.paused_until = 0;
                r.reason.clear();
            }
            if (auto it = by_name.find(r.name); it != by_name.end()) {
                r.paused_until = it->second->until;
                r.reason = it->second->reason;
                by_name.erase(it);
            }
            out.push_back(std::move(r));
        }
    }
    for (const auto& [name, s] : by_name) {
        DestinationRow r;
        r.name = name;
        r.kind = name.starts_with("mx:") ? "provider" : "destination";
        r.paused_until = s->until;
        r.reason = s->reason;
        out.push_back(std::move(r));
    }
    return out;
}

bool valid_destination_name(std::string_view name) {
    if (name.starts_with("mx:")) {
        name.remove_prefix(3);
        if (name.starts_with(".")) name.remove_prefix(1);
        return valid_host(name, 1);
    }
    return valid_host(name, 2);
}

}  // namespace mxlane::ctl
