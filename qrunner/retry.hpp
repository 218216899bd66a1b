// retry: when a temporarily failed recipient is tried again, and when it expires.
#pragma once
#include <cstdint>
#include <vector>

#include "libshared/queue_lifetime.hpp"  // lifetime_over: when a failing recipient expires

namespace mxlane::qrunner {

// retry_schedule[attempts - 1] seconds after now (the last value repeats), plus
// up to 10% jitter (`spread` in [0, 1)) so that a big job's deferrals do not all
// come due in the same second. `attempts` counts the attempt that just failed.
std::int64_t next_attempt_ms(const std::vector<std::int64_t>& schedule, std::uint32_t attempts,
                             std::int64_t now_ms, double spread);

}  // namespace mxlane::qrunner
