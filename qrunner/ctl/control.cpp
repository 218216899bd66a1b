// control: mxlanectl flush [ID], hold ID, release ID, delete ID [--force] (postqueue/postsuper's verbs).
#include <iostream>

#include "libshared/json.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

// "J00002A: 3 recipients held", or {"job": "J00002A", "held": 3} under --json.
int report(const Context& c, const std::string& job, const std::string& verb, std::size_t n) {
    if (c.json) {
        json::object doc;
        if (!job.empty()) doc["job"] = job;
        doc[verb] = n;
        std::cout << json::serialize(std::move(doc)) << "\n";
    } else {
        std::cout << (job.empty() ? "all jobs" : job) << ": " << n << (n == 1 ? " recipient " : " recipients ")
                  << verb << "\n";
    }
    return 0;
}

}  // namespace

int cmd_flush(Context& c) {
    std::optional<std::uint64_t> id;
    if (!c.args.empty()) id = c.job_arg(0);
    c.no_more_args(id ? 1 : 0);
    std::size_t n = c.store().flush(id, store::now_ms());
    return report(c, id ? store::format_job_id(*id) : "", "flushed", n);
}

int cmd_hold(Context& c) {
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    return report(c, store::format_job_id(id), "held", c.store().hold(id));
}

int cmd_release(Context& c) {
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    return report(c, store::format_job_id(id), "released", c.store().release(id, store::now_ms()));
}

int cmd_delete(Context& c) {
    bool force = c.take_flag("--force");
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    auto job = *c.store().job(id);
    // A recipient in flight may be on the wire right now: deleting the job under the
    // qrunner would lose its result, so that takes an explicit --force (or hold, wait, delete).
    if (std::size_t inflight = c.store().inflight_count(id); inflight > 0 && !force)
        throw UsageError(store::format_job_id(id) + " has " + std::to_string(inflight) +
                         " recipients in flight; hold it and try again, or use --force");
    c.store().remove_job(id);
    return report(c, store::format_job_id(id), "deleted", job.total());
}

}  // namespace mxlane::ctl
