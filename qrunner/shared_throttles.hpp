// shared_throttles: reply rules' throttles as every host applies them, kept per host and shared through Redis (mxlane:throttled).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "qrunner/shared_lists.hpp"

namespace mxlane::qrunner {

// One throttle: at most per_second messages to a destination, provider or
// sending address (by its Shaping's name) until `until` (ms, store time).
struct SharedThrottle {
    std::int64_t until = 0;
    double per_second = 0;
    std::string reason;  // the reply that set it
    std::string encode() const;  // "until rate reason"
    // nullopt: not "until rate [reason]" with a positive rate.
    static std::optional<SharedThrottle> decode(std::string_view text);
};

// The throttles this host applies: its own (a reply rule matched here) and
// those other hosts told it of. Each host applies the same throttle to the
// Shaping of the same name, so together they keep to it through the shared
// bucket; alone (Redis away), each at its share. Thread-safe: the scheduler
// writes and reads it under its lock, SharedList on the store thread.
class ThrottleTable {
public:
    // A throttle this host set.
    void put(const std::string& name, SharedThrottle t, std::int64_t now);
    // The throttle of `name` that still holds at `now`.
    std::optional<SharedThrottle> get(const std::string& name, std::int64_t now) const;
    // Those that still hold, encoded (SharedList's view); the others are forgotten.
    std::map<std::string, std::string> read(std::int64_t now);
    // Another host's: true when it is new here (and has not ended yet).
    bool add(const std::string& name, std::string_view value, std::int64_t now);
    bool remove(const std::string& name);

private:
    mutable std::mutex mu_;  // guards map_
    std::map<std::string, SharedThrottle> map_;
};

// The table as one of SharedList's lists ("throttled").
LocalList throttle_list(ThrottleTable& table);

}  // namespace mxlane::qrunner
