// throttle: token buckets for per-destination rates (messages per hour, connections per minute).
#include "qrunner/throttle.hpp"

#include <algorithm>

namespace mxlane::qrunner {
namespace {

// Refills add up fractions of a token; a sum that should be 1 may come out
// as 0.9999999. Without this slack a token due at t would go at the next try.
constexpr double kSlack = 1e-9;

}  // namespace

TokenBucket::TokenBucket(std::int64_t count, Clock::duration period, Clock::time_point now, double burst) {
    configure(count, period, now, burst);
    tokens_ = burst_;
}

void TokenBucket::configure(std::int64_t count, Clock::duration period, Clock::time_point now, double burst) {
    if (!unlimited()) refill(now);
    const double seconds = std::chrono::duration<double>(period).count();
    const bool was_unlimited = unlimited();
    per_second_ = count > 0 && seconds > 0 ? static_cast<double>(count) / seconds : 0;
    burst_ = burst > 0 ? std::max(1.0, burst) : std::max(1.0, per_second_);
    // From no limit to a limit: start full, as a new bucket does.
    tokens_ = was_unlimited ? burst_ : std::min(tokens_, burst_);
    last_ = now;
}

void TokenBucket::refill(Clock::time_point now) {
    if (now <= last_) return;
    tokens_ = std::min(burst_, tokens_ + per_second_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
}

bool TokenBucket::try_take(Clock::time_point now) {
    if (unlimited()) return true;
    refill(now);
    if (tokens_ < 1 - kSlack) return false;
    tokens_ = std::max(0.0, tokens_ - 1);
    return true;
}

double TokenBucket::level(Clock::time_point now) const {
    if (unlimited()) return burst_;
    TokenBucket copy = *this;
    copy.refill(now);
    return copy.tokens_;
}

TokenBucket::Clock::time_point TokenBucket::ready_at(Clock::time_point now, double n) const {
    if (unlimited()) return now;
    const double have = level(now);
    if (have >= n - kSlack) return now;
    const double wait = (n - have) / per_second_;
    return now + std::chrono::ceil<Clock::duration>(std::chrono::duration<double>(wait));
}

TokenBucket per_hour(std::int64_t count, TokenBucket::Clock::time_point now) {
    return TokenBucket(count, std::chrono::hours(1), now);
}

TokenBucket per_minute(std::int64_t count, TokenBucket::Clock::time_point now) {
    return TokenBucket(count, std::chrono::minutes(1), now);
}

}  // namespace mxlane::qrunner
