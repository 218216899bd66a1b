// seen_jobs: the job ids a store-thread pass has dealt with once, forgetting those that ended so that the set stays bounded.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>

namespace mxlane::qrunner {

// The qrunner runs for months over many jobs: a set of every job id it ever
// saw would only grow. Forgetting a job is safe once it is done or deleted:
// it is never claimed again. A held or released job is kept (a release, "send
// it anyway", must not be undone by a second check). `ended` (a store read)
// is asked for every id only when the set has doubled since the last sweep:
// at most about two reads per job seen.
class SeenJobs {
public:
    // True the first time `job_id` is seen; it is remembered until it ends.
    // `ended` may throw; the sweep then stops and the next one tries again.
    bool first_sight(std::uint64_t job_id, const std::function<bool(std::uint64_t)>& ended) {
        if (!ids_.insert(job_id).second) return false;
        if (ids_.size() < prune_at_) return true;
        prune_at_ = 2 * ids_.size();  // even when `ended` throws, not again at once
        for (auto it = ids_.begin(); it != ids_.end();)
            it = *it != job_id && ended(*it) ? ids_.erase(it) : std::next(it);
        prune_at_ = std::max(min_prune_at, 2 * ids_.size());
        return true;
    }
    void forget(std::uint64_t job_id) { ids_.erase(job_id); }
    std::size_t size() const { return ids_.size(); }

    static constexpr std::size_t min_prune_at = 1024;

private:
    std::set<std::uint64_t> ids_;
    std::size_t prune_at_ = min_prune_at;
};

}  // namespace mxlane::qrunner
