// backoff: adaptive concurrency per destination: halve and pause on throttling replies, ramp back up.
#include "qrunner/backoff.hpp"

#include <algorithm>

#include "libshared/address.hpp"
#include "libshared/text.hpp"

namespace mxlane::qrunner {

ThrottlePatterns::ThrottlePatterns(std::vector<std::string> patterns) {
    for (auto& p : patterns)
        if (auto t = trim(p); !t.empty()) patterns_.push_back(to_lower(t));
}

ThrottlePatterns ThrottlePatterns::parse(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto comma = text.find(',');
        out.emplace_back(text.substr(0, comma));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return ThrottlePatterns(std::move(out));
}

bool ThrottlePatterns::matches(const Reply& reply) const {
    if (reply.synthetic || !reply.temporary()) return false;
    if (reply.code == 421) return true;
    const std::string text = to_lower(reply.str());
    return std::any_of(patterns_.begin(), patterns_.end(),
                       [&](const std::string& p) { return text.find(p) != std::string::npos; });
}

void AdaptiveConcurrency::configure(int limit) {
    limit = std::max(1, limit);
    if (!backed_off()) current_ = limit;
    configured_ = limit;
    current_ = std::min(current_, configured_);
}

bool AdaptiveConcurrency::throttled(Clock::time_point now, Clock::duration pause) {
    if (paused(now)) return false;
    current_ = std::max(1, current_ / 2);
    clean_ = 0;
    paused_until_ = now + pause;
    return true;
}

bool AdaptiveConcurrency::clean() {
    if (!backed_off()) return false;
    if (++clean_ < kRampAfter) return false;
    clean_ = 0;
    ++current_;
    return true;
}

}  // namespace mxlane::qrunner
