// scheduler_compliance: compliance_check when a job is first claimed: its From: domain checked as mxlanectl check does; hold or warn.
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace {

compliance::CheckJob check_job(const std::shared_ptr<const Settings>& s) {
    compliance::CheckJob job;
    job.dns_servers = s->cfg.list("dns_servers");
    job.dns_timeout = std::chrono::seconds(s->cfg.seconds("dns_timeout"));
    job.setup.keys = s->dkim ? &s->dkim->keys() : nullptr;
    try {
        job.setup.senders = compliance::senders_from(s->cfg.get("source_pools"));
    } catch (const std::runtime_error& e) {
        log::warning(std::string("compliance_check: source_pools: ") + e.what() + "; the HELO name's address is checked");
    }
    job.setup.helo_name = s->cfg.get("smtp_helo_name");
    job.setup.unsubscribe_address = s->unsubscribe_address;
    job.setup.unsubscribe_url = s->unsubscribe_url;
    job.owner = s;  // keeps the key table alive while the check runs
    return job;
}

}  // namespace

// On the store thread, after a claim loaded its messages. With hold, the
// claim waits for a domain's first check (on the checker thread: DNS never
// runs here or on the event loop), so that nothing of a failing domain goes
// out; with warn it does not wait, and the failures are logged when known.
void Scheduler::compliance_at_claim(const std::map<std::uint64_t, std::shared_ptr<const MessageData>>& messages,
                                    const std::shared_ptr<const Settings>& s, std::set<std::uint64_t>& held) {
    for (const auto& [id, m] : messages) {
        if (!m || is_notification(m->meta) || !compliance_seen_.insert(m->meta.job_id).second) continue;
        const std::string domain = dkim::from_domain(m->text);
        if (domain.empty() || domain.find("{{") != std::string::npos) continue;
        const std::uint64_t job_id = m->meta.job_id;
        const std::string token = m->job_token;
        if (!s->compliance_hold) {
            checks_.check(domain, check_job(s), [token](const std::string& d, const compliance::Rows& rows) {
                if (compliance::any_failed(rows))
                    log::warning(token + ": the sending domain " + d + " fails compliance_check (warn): " +
                                 compliance::failures_text(rows));
            });
            continue;
        }
        const compliance::Rows rows = checks_.check(domain, check_job(s)).get();
        if (!compliance::any_failed(rows)) continue;
        const std::string why = "compliance_check: the sending domain " + domain + " fails: " + compliance::failures_text(rows);
        try {
            auto job = store_.job(job_id);
            if (job && job->state != store::JobState::held) store_.hold(job_id, why);
            log::warning(token + ": held: " + why);
            held.insert(job_id);
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error(token + ": cannot hold the job for compliance_check: " + e.what());
            held.insert(job_id);  // its recipients go back, due again, and are checked then
            compliance_seen_.erase(job_id);
        }
    }
}

}  // namespace mxlane::qrunner
