// queue_lifetime: whether a recipient has outlived max_queue_lifetime.
#pragma once
#include <cstdint>

namespace mxlane {

// A recipient queued at `queued_at` whose lifetime is over at `now` (all in
// ms since the epoch) expires instead of being tried again or deferred.
// lifetime_ms 0: no limit. The store's claim and the result writer both ask this.
inline bool lifetime_over(std::int64_t queued_at, std::int64_t now, std::int64_t lifetime_ms) {
    return lifetime_ms > 0 && now - queued_at >= lifetime_ms;
}

}  // namespace mxlane
