// destinations: the rows of mxlanectl destinations: the qrunner's status snapshot merged with the store's suspensions.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/store/queue_store.hpp"

namespace mxlane::ctl {

// One destination (a domain's MX set) or provider ("mx:.google.com").
struct DestinationRow {
    std::string name, kind, provider, mx;  // kind: "destination" or "provider" (by the name when not given)
    std::int64_t queued = 0, inflight = 0, connections = 0, limit = 0;
    std::int64_t paused_until = 0;         // ms since the epoch; 0: not paused; QueueStore::kForever: until resumed
    std::string reason, last_reply;
};

// One sending address (source_pools) towards one provider, as the qrunner shapes it in memory.
struct SourceRow {
    std::string address, provider;
    std::int64_t connections = 0;
    std::int64_t throttle_per_hour = 0;  // a source-scope throttle's rate; 0: none
    std::int64_t throttled_until = 0;    // ms since the epoch; 0: not throttled
    std::int64_t paused_until = 0;       // backed off or suspended until; 0: not
    std::string reason;
};

// The file a running qrunner rewrites every second: <queue_directory>/destinations.json.
inline constexpr const char* kSnapshotFile = "destinations.json";
// A snapshot older than this is a stopped qrunner's.
inline constexpr std::int64_t kSnapshotFreshMs = 10000;

// The snapshot is not what the qrunner writes (not JSON, wrong types, no name).
class SnapshotError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Snapshot {
    bool live = false;  // its pid runs and it was written within kSnapshotFreshMs of now
    std::vector<DestinationRow> rows;
    std::vector<SourceRow> sources;  // "sources" (absent before source_pools shaped any)
};

// True when a process with this pid exists (kill(pid, 0) succeeds or says EPERM).
bool process_alive(long pid);

// Parses the snapshot's text; throws SnapshotError when it is malformed. alive
// decides whether its pid runs (process_alive unless a test says otherwise).
Snapshot parse_snapshot(std::string_view text, std::int64_t now,
                        const std::function<bool(long)>& alive = process_alive);

// The running qrunner's snapshot in queue_directory; an empty one when there is
// none, it cannot be read, or it is a stopped qrunner's (a malformed one is
// named on stderr).
Snapshot read_snapshot(const std::string& queue_directory, std::int64_t now);

// The rows to show at `now`: a live snapshot's rows in its order, each with the
// store's suspension of the same name over its paused_until and reason (a pause
// of the snapshot that has run out shows as none), then one row for each
// suspension the snapshot lacks (numbers 0, mx ""; kind "provider" for "mx:").
std::vector<DestinationRow> merge_destinations(const Snapshot& snapshot,
                                               const std::vector<store::QueueStore::Suspension>& suspensions,
                                               std::int64_t now);

// Whether `name` (lower-cased) can name a destination or provider: a domain
// with at least two labels ("example.test"), or "mx:" with an MX host name or
// ".suffix" ("mx:.google.com", "mx:mx1.example.test").
bool valid_destination_name(std::string_view name);

}  // namespace mxlane::ctl
