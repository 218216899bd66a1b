// throttle: token buckets for per-destination rates (messages per hour, connections per minute).
#pragma once
#include <chrono>
#include <cstdint>

namespace mxlane::qrunner {

// A token bucket: `count` tokens per `period`, refilled continuously, holding
// at most `burst` tokens (at least one). It starts full. A count of 0 means no
// limit: every take succeeds. Plain value, no locking: its owner guards it
// (the scheduler under its mutex, the relay under its own).
//
// The burst is small on purpose (by default one second's worth, at least one
// token): "3600 an hour" then means about one a second from the start, not
// 3600 at once followed by an hour of silence.
class TokenBucket {
public:
    using Clock = std::chrono::steady_clock;

    TokenBucket() = default;  // no limit
    TokenBucket(std::int64_t count, Clock::duration period, Clock::time_point now, double burst = 0);

    // A new rate (SIGHUP): the tokens saved so far are kept, capped at the new burst.
    void configure(std::int64_t count, Clock::duration period, Clock::time_point now, double burst = 0);

    bool unlimited() const { return per_second_ <= 0; }
    // Takes one token when there is one at `now`.
    bool try_take(Clock::time_point now);
    // When the n-th token from now is there, if tokens are taken one at a
    // time as they come (`now` when n tokens are already there).
    Clock::time_point ready_at(Clock::time_point now, double n = 1) const;
    // Tokens available at `now` (for tests and log lines).
    double level(Clock::time_point now) const;
    double per_second() const { return per_second_; }
    double burst() const { return burst_; }

private:
    void refill(Clock::time_point now);

    double per_second_ = 0;  // 0: unlimited
    double burst_ = 1;
    double tokens_ = 1;
    Clock::time_point last_{};
};

// Shorthands for the parameters that are written per hour and per minute.
TokenBucket per_hour(std::int64_t count, TokenBucket::Clock::time_point now);
TokenBucket per_minute(std::int64_t count, TokenBucket::Clock::time_point now);

}  // namespace mxlane::qrunner
