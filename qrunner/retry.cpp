// retry: when a temporarily failed recipient is tried again, and when it expires.
#include "qrunner/retry.hpp"

#include <algorithm>

namespace mxlane::qrunner {

std::int64_t next_attempt_ms(const std::vector<std::int64_t>& schedule, std::uint32_t attempts,
                             std::int64_t now_ms, double spread) {
    std::int64_t wait_s = 300;
    if (!schedule.empty()) {
        std::size_t i = std::min<std::size_t>(attempts == 0 ? 0 : attempts - 1, schedule.size() - 1);
        wait_s = schedule[i];
    }
    std::int64_t wait_ms = wait_s * 1000;
    return now_ms + wait_ms + static_cast<std::int64_t>(static_cast<double>(wait_ms) * 0.1 * std::clamp(spread, 0.0, 0.999));
}

}  // namespace mxlane::qrunner
