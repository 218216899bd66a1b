// destination: one place mail goes (an MX set, or the relay): its queue, limits and pause.
#include "qrunner/destination.hpp"

namespace mxlane::qrunner {

OwnedWork Destination::take_next() {
    OwnedWork w = std::move(queue_.front());
    queue_.pop_front();
    return w;
}

OwnedWork Destination::take_last() {
    OwnedWork w = std::move(queue_.back());
    queue_.pop_back();
    return w;
}

std::vector<OwnedWork> Destination::take_all() {
    std::vector<OwnedWork> all;
    all.reserve(queue_.size());
    while (!queue_.empty()) all.push_back(take_next());
    return all;
}

// A connection that idles for the message rate takes the next token itself,
// so none opens while one idles.
bool Destination::may_open(Clock::time_point now) const {
    return !paused(now) && !backing_off(now) && idle_ == 0 && active_ < limit() && messages.ready_at(now) <= now &&
           connections.ready_at(now) <= now;
}

void Destination::opened(Clock::time_point now) {
    messages.try_take(now);
    connections.try_take(now);
    ++active_;
}

void Destination::throttle(Clock::time_point now, Clock::time_point until, double per_second) {
    throttled_until_ = until;
    // A whole number an hour, at least one: the token bucket's unit.
    const auto per_hour = std::max<std::int64_t>(1, static_cast<std::int64_t>(per_second * 3600 + 0.5));
    messages.configure(per_hour, std::chrono::hours(1), now);
}

void Destination::pause(Clock::time_point until, Reply why, std::string relay) {
    paused_until_ = until;
    pause_reply_ = std::move(why);
    pause_relay_ = std::move(relay);
}

bool Destination::end_pause(Clock::time_point now) {
    if (!paused(now)) return false;
    paused_until_ = {};
    return true;
}

}  // namespace mxlane::qrunner
