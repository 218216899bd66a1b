// shaping: the limits one destination, or every destination of one provider together, is sent under.
#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "qrunner/backoff.hpp"
#include "qrunner/shared_leases.hpp"
#include "qrunner/shared_state.hpp"
#include "qrunner/throttle.hpp"

namespace mxlane::qrunner {

using Clock = std::chrono::steady_clock;

// Connections, rates, backoff and suspension: a destination's own, and, for a
// destination whose best MX host belongs to a provider (destination_policy
// "mx:" lines, the providers file), the provider's as well, shared by every
// destination of that provider. A new connection or message needs room in
// both. Plain state, guarded by the scheduler's mutex.
struct Shaping {
    std::string name;       // the destination's domain, or the provider's line ("mx:.google.com")
    bool provider = false;

    AdaptiveConcurrency concurrency;  // destination_concurrency, halved by backoff
    TokenBucket messages;             // max_messages_per_hour (one token per transaction)
    TokenBucket connections;          // max_connections_per_minute
    // shared_state: the buckets of the same names across hosts (null: this host alone).
    // A message or connection needs a token from the local bucket and from the shared one.
    SharedState* shared = nullptr;
    Clock::time_point message_ready_at(Clock::time_point now, double n = 1) const;
    Clock::time_point connection_ready_at(Clock::time_point now) const;
    void take_message(Clock::time_point now);
    void take_connection(Clock::time_point now);
    // shared_state: destination_concurrency across hosts, as leases on `name` (null: this host alone).
    SharedLeases* leases = nullptr;
    // When a lease lets a new connection open (now without leases, or while this host's own limit is full).
    Clock::time_point lease_ready_at(Clock::time_point now) const;
    void opened(Clock::time_point now);
    void closed();
    int messages_per_connection = 100;
    Clock::duration backoff_pause = std::chrono::minutes(5);  // destination_backoff
    int active = 0;  // connections open or opening
    int idle = 0;    // of those, waiting for the message rate

    // A reply_rules throttle: at most per_second messages until it ends; the
    // scheduler shapes anew (throttle_over) once it has. With shared_state it
    // holds on every host (shared_throttles.hpp); `hosts` divides the rate
    // while Redis is away, as it does every limit.
    std::optional<Clock::time_point> throttled_until;
    double throttle_per_second = 0;
    std::int64_t throttled_wall = 0;  // the throttle's end in store time (ms): the one applied here
    void throttle(Clock::time_point now, Clock::time_point until, double per_second, std::int64_t hosts = 1);
    // The throttle set before, at the share of `hosts` (they changed): true when there is one.
    bool rethrottle(Clock::time_point now, std::int64_t hosts);
    bool throttle_over(Clock::time_point now) const { return throttled_until && now >= *throttled_until; }
    bool throttled(Clock::time_point now) const { return throttled_until && now < *throttled_until; }

    // A suspension kept in the store under `name` (a reply_rules suspend,
    // mxlanectl pause); suspended_wall is its end in store time (ms), 0 when none.
    Clock::time_point suspended_until{};
    std::int64_t suspended_wall = 0;
    std::string reason;  // why it holds: the suspension's reason, or the reply it backed off after
    bool suspended(Clock::time_point now) const { return now < suspended_until; }

    std::string last_reply;  // the latest transaction's deciding reply (mxlanectl destinations)

    // Backed off (a throttling reply's pause) or suspended: nothing new goes.
    bool holding(Clock::time_point now) const { return concurrency.paused(now) || suspended(now); }
    // When holding ends (now when it does not hold).
    Clock::time_point holds_until(Clock::time_point now) const;
    // Room for a new connection now, as far as this host's limits tell (the lease is asked for after).
    bool may_open(Clock::time_point now) const;
};

}  // namespace mxlane::qrunner
