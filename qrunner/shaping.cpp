// shaping: the limits one destination, or every destination of one provider together, is sent under.
#include "qrunner/shaping.hpp"

#include <algorithm>

namespace mxlane::qrunner {

void Shaping::throttle(Clock::time_point now, Clock::time_point until, double per_second, std::int64_t hosts) {
    throttled_until = until;
    throttle_per_second = per_second;
    // A whole number an hour, at least one: the token bucket's unit.
    const auto per_hour = static_cast<std::int64_t>(per_second * 3600 + 0.5) / std::max<std::int64_t>(1, hosts);
    messages.configure(std::max<std::int64_t>(1, per_hour), std::chrono::hours(1), now);
}

bool Shaping::rethrottle(Clock::time_point now, std::int64_t hosts) {
    if (!throttled(now)) return false;
    throttle(now, *throttled_until, throttle_per_second, hosts);
    return true;
}

Clock::time_point Shaping::holds_until(Clock::time_point now) const {
    auto t = now;
    if (concurrency.paused(now)) t = std::max(t, concurrency.paused_until());
    if (suspended(now)) t = std::max(t, suspended_until);
    return t;
}

bool Shaping::may_open(Clock::time_point now) const {
    return !holding(now) && active < concurrency.limit() && message_ready_at(now) <= now &&
           connection_ready_at(now) <= now;
}

Clock::time_point Shaping::lease_ready_at(Clock::time_point now) const {
    if (!leases || active >= concurrency.limit()) return now;  // a closing connection here wakes it
    return leases->ready_at(name, concurrency.limit(), now);
}

void Shaping::opened(Clock::time_point now) {
    take_message(now);
    take_connection(now);
    ++active;
    if (leases) leases->opened(name);
}

void Shaping::closed() {
    --active;
    if (leases) leases->closed(name);
}

// The shared buckets are asked only once the local one has a token: a host
// never asks Redis for more than its own limit lets it use.
Clock::time_point Shaping::message_ready_at(Clock::time_point now, double n) const {
    const auto local = messages.ready_at(now, n);
    if (!shared || local > now) return local;
    return shared->ready_at("msg:" + name, messages.per_second(), messages.burst(), now);
}

Clock::time_point Shaping::connection_ready_at(Clock::time_point now) const {
    const auto local = connections.ready_at(now);
    if (!shared || local > now) return local;
    return shared->ready_at("conn:" + name, connections.per_second(), connections.burst(), now);
}

void Shaping::take_message(Clock::time_point now) {
    messages.try_take(now);
    if (shared) shared->take("msg:" + name);
}

void Shaping::take_connection(Clock::time_point now) {
    connections.try_take(now);
    if (shared) shared->take("conn:" + name);
}

}  // namespace mxlane::qrunner
