// retry: when a temporarily failed recipient is tried again, and when it expires.
#pragma once
#include <cstdint>
#include <vector>

namespace mxlane::qrunner {

// retry_schedule[attempts - 1] seconds after now (the last value repeats), plus
// up to 10% jitter (`spread` in [0, 1)) so that a big job's deferrals do not all
// come due in the same second. `attempts` counts the attempt that just failed.
std::int64_t next_attempt_ms(const std::vector<std::int64_t>& schedule, std::uint32_t attempts,
                             std::int64_t now_ms, double spread);

// A recipient queued at `queued_at` that fails temporarily at `now` expires
// instead of being deferred once max_queue_lifetime has run out.
inline bool lifetime_over(std::int64_t queued_at, std::int64_t now, std::int64_t lifetime_ms) {
    return lifetime_ms > 0 && now - queued_at >= lifetime_ms;
}

}  // namespace mxlane::qrunner
