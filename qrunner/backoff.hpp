// backoff: adaptive concurrency per destination: halve and pause on throttling replies, ramp back up.
#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/smtp_reply.hpp"

namespace mxlane::qrunner {

// Which replies mean "you are sending too much": every 421 (RFC 5321 3.8:
// the server is closing the channel), and a 4xx whose code, enhanced code or
// text contains one of the patterns (case-insensitive). Synthetic replies
// (timeouts, lost connections, made by mxlane) never do.
class ThrottlePatterns {
public:
    ThrottlePatterns() = default;
    explicit ThrottlePatterns(std::vector<std::string> patterns);
    // destination_backoff_patterns: patterns separated by commas; blanks around them ignored.
    static ThrottlePatterns parse(std::string_view text);

    bool matches(const Reply& reply) const;
    const std::vector<std::string>& patterns() const { return patterns_; }

private:
    std::vector<std::string> patterns_;  // lower case
};

// The concurrency a destination may use now: destination_concurrency, or
// less after a throttling reply. A throttling reply halves it (at least 1)
// and pauses the destination; every `ramp_after` clean transactions after
// the pause add one connection back, up to the configured limit.
class AdaptiveConcurrency {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr int kRampAfter = 10;

    explicit AdaptiveConcurrency(int configured = 1) : configured_(configured), current_(configured) {}

    // destination_concurrency changed (SIGHUP): a raise applies once the
    // ramp gets there if the destination is backed off, at once if not.
    void configure(int limit);

    // A throttling reply at `now`. Returns false when the destination is
    // already paused (several connections hearing the same 421 halve once).
    bool throttled(Clock::time_point now, Clock::duration pause);
    // The pause ends now (mxlanectl resume); the halved limit ramps up as usual.
    void resume() { paused_until_ = {}; }
    // A transaction went through without any temporary failure. Returns true
    // when it raised the limit by one.
    bool clean();

    int limit() const { return current_; }
    int configured() const { return configured_; }
    bool backed_off() const { return current_ < configured_; }
    bool paused(Clock::time_point now) const { return now < paused_until_; }
    Clock::time_point paused_until() const { return paused_until_; }

private:
    int configured_;
    int current_;
    int clean_ = 0;
    Clock::time_point paused_until_{};
};

}  // namespace mxlane::qrunner
