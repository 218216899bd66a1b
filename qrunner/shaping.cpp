// shaping: the limits one destination, or every destination of one provider together, is sent under.
#include "qrunner/shaping.hpp"

#include <algorithm>

namespace mxlane::qrunner {

void Shaping::throttle(Clock::time_point now, Clock::time_point until, double per_second) {
    throttled_until = until;
    // A whole number an hour, at least one: the token bucket's unit.
    const auto per_hour = std::max<std::int64_t>(1, static_cast<std::int64_t>(per_second * 3600 + 0.5));
    messages.configure(per_hour, std::chrono::hours(1), now);
}

Clock::time_point Shaping::holds_until(Clock::time_point now) const {
    auto t = now;
    if (concurrency.paused(now)) t = std::max(t, concurrency.paused_until());
    if (suspended(now)) t = std::max(t, suspended_until);
    return t;
}

bool Shaping::may_open(Clock::time_point now) const {
    return !holding(now) && active < concurrency.limit() && messages.ready_at(now) <= now &&
           connections.ready_at(now) <= now;
}

}  // namespace mxlane::qrunner
