// scheduler_throttles: reply rules' throttles on every host: the one a reply set here, and those other hosts set.
#include "libshared/dates.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

void Scheduler::throttle_here(Shaping& sh, const ReplyRule& rule, Clock::time_point now) {
    sh.throttle(now, now + rule.duration, rule.per_second, share_divisor());
    sh.throttled_wall = wall_ms(*sh.throttled_until, now);
    // The other hosts learn of it from the table (shared_throttles_, within a second).
    throttles_.put(sh.name, SharedThrottle{sh.throttled_wall, rule.per_second, sh.reason}, store::now_ms());
}

void Scheduler::apply_throttle(Shaping& sh, Clock::time_point now) {
    const std::int64_t wall = store::now_ms();
    const auto t = throttles_.get(sh.name, wall);
    if (!t || t->until == sh.throttled_wall) return;  // none, or applied (this host's own among them)
    sh.throttled_wall = t->until;
    // What back_off does on the host that saw the reply: half the connections, then the rate.
    sh.concurrency.throttled(now, Clock::duration::zero());
    sh.throttle(now, now + std::chrono::milliseconds(t->until - wall), t->per_second, share_divisor());
    sh.reason = t->reason;
    const auto per_hour = static_cast<std::int64_t>(t->per_second * 3600 + 0.5);
    notes_.push_back((sh.provider ? "provider " : "destination ") + sh.name + " throttled by another host: at most " +
                     std::to_string(per_hour) + " messages an hour until " + iso_time(t->until) + ", concurrency " +
                     std::to_string(sh.concurrency.limit()) + ": " + t->reason);
}

void Scheduler::apply_throttles(Clock::time_point now) {
    for (auto& [name, p] : providers_) apply_throttle(*p, now);
    for (auto& [key, d] : destinations_) apply_throttle(*d->own, now);
    for (auto& [name, b] : sources_) apply_throttle(*b, now);
}

}  // namespace mxlane::qrunner
