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
bool Destination::may_open_here(Clock::time_point now) const {
    if (paused(now) || idle() > 0) return false;
    bool room = true;
    each_shaping([&](const Shaping& s) { room = room && s.may_open(now); });
    return room;
}

// The leases (shared_state) last, once every limit of this host has room,
// so that none is granted for nothing; one that is goes back at the second renewal.
bool Destination::may_open(Clock::time_point now) const {
    return may_open_here(now) && lease_ready_at(now) <= now;
}

void Destination::opened(Clock::time_point now) {
    each_shaping([&](Shaping& s) { s.opened(now); });
}

void Destination::closed() {
    each_shaping([](Shaping& s) { s.closed(); });
}

void Destination::idle_started() {
    each_shaping([](Shaping& s) { ++s.idle; });
}

void Destination::idle_ended() {
    each_shaping([](Shaping& s) { --s.idle; });
}

int Destination::messages_per_connection() const {
    int n = own->messages_per_connection;
    if (provider) n = std::min(n, provider->messages_per_connection);
    return n;
}

bool Destination::backing_off(Clock::time_point now) const {
    return own->holding(now) || (provider && provider->holding(now));
}

Clock::time_point Destination::holds_until(Clock::time_point now) const {
    auto t = own->holds_until(now);
    return provider ? std::max(t, provider->holds_until(now)) : t;
}

bool Destination::take_message(Clock::time_point now) {
    if (message_ready_at(now) > now) return false;
    each_shaping([&](Shaping& s) { s.take_message(now); });
    return true;
}

Clock::time_point Destination::message_ready_at(Clock::time_point now, double n) const {
    auto t = own->message_ready_at(now, n);
    return provider ? std::max(t, provider->message_ready_at(now, n)) : t;
}

Clock::time_point Destination::lease_ready_at(Clock::time_point now) const {
    auto t = now;
    each_shaping([&](const Shaping& s) { t = std::max(t, s.lease_ready_at(now)); });
    return t;
}

Clock::time_point Destination::connection_ready_at(Clock::time_point now) const {
    auto t = own->connection_ready_at(now);
    return provider ? std::max(t, provider->connection_ready_at(now)) : t;
}

std::size_t Destination::waiting_recipients() const {
    std::size_t n = 0;
    for (const auto& w : queue_) n += w.work().rcpts.size();
    return n;
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
