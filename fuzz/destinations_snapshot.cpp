// fuzz target destinations_snapshot: any destinations.json is read into rows or refused with a SnapshotError, and merges safely.
#include <string>

// Boost.JSON's implementation, once in this program (libshared/json.cpp, which holds it in
// the ordinary build, carries GCC-only pragmas).
#include <boost/json/src.hpp>

#include "fuzz/fuzz_input.hpp"
#include "qrunner/ctl/destinations.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::int64_t now = 1764680000000;
    try {
        ctl::Snapshot s = ctl::parse_snapshot(fuzz::as_text(data, size), now, [](long) { return true; });
        store::QueueStore::Suspension susp;
        susp.name = s.rows.empty() ? "example.test" : s.rows.front().name;
        susp.until = now + 1000;
        auto rows = ctl::merge_destinations(s, {susp}, now);
        // The store's suspension is always shown, once, with its time.
        std::size_t seen = 0;
        for (const auto& r : rows)
            if (r.name == susp.name && r.paused_until == susp.until) ++seen;
        if (seen == 0) __builtin_trap();
        for (const auto& r : rows)
            if (r.name.empty()) __builtin_trap();
    } catch (const ctl::SnapshotError&) {
    }
    return 0;
}
