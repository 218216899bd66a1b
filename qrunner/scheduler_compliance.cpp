// scheduler_compliance: compliance_check when a job is first claimed: its From: domain checked as mxlanectl check does; hold or warn.
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace {

// The job's pool decides the sending addresses checked: a pool's addresses
// never carry another pool's mail (scheduler_pools.cpp), so another pool's bad
// address says nothing about this job. `pool` is the message's (or "": the
// default_pool, else every address of source_pools, as delivery picks them).
compliance::CheckJob check_job(const std::shared_ptr<const Settings>& s, const std::string& pool) {
    compliance::CheckJob job;
    job.dns_servers = s->cfg.list("dns_servers");
    job.dns_timeout = std::chrono::seconds(s->cfg.seconds("dns_timeout"));
    job.setup.keys = s->dkim ? &s->dkim->keys() : nullptr;
    for (const SourceAddress* a : s->pool_addresses(pool)) job.setup.senders.push_back({a->address, a->helo});
    job.pool = pool.empty() ? s->default_pool : pool;
    job.setup.helo_name = s->cfg.get("smtp_helo_name");
    job.setup.unsubscribe_address = s->unsubscribe_address;
    job.setup.unsubscribe_url = s->unsubscribe_url;
    job.owner = s;  // keeps the key table alive while the check runs
    return job;
}

std::string sending_domain(const std::string& domain, const std::string& pool) {
    return "the sending domain " + domain + (pool.empty() ? std::string() : " from pool " + pool);
}

}  // namespace

// On the store thread, after a claim loaded its messages. With hold, the
// claim waits for a domain's first check (on the checker thread: DNS never
// runs here or on the event loop), so that nothing of a failing domain goes
// out; with warn it does not wait, and the failures are logged when known.
void Scheduler::compliance_at_claim(const std::map<std::uint64_t, std::shared_ptr<const MessageData>>& messages,
                                    const std::shared_ptr<const Settings>& s, std::set<std::uint64_t>& held) {
    for (const auto& [id, m] : messages) {
        // A job held for an unknown pool has no addresses to check; it is checked once released.
        if (!m || is_notification(m->meta) || m->pool_hold || !first_sight(compliance_seen_, m->meta.job_id))
            continue;
        const std::string domain = dkim::from_domain(m->text);
        if (domain.empty() || domain.find("{{") != std::string::npos) continue;
        const std::uint64_t job_id = m->meta.job_id;
        const std::string token = m->job_token;
        compliance::CheckJob job = check_job(s, m->meta.pool);
        const std::string subject = sending_domain(domain, job.pool);
        if (!s->compliance_hold) {
            checks_.check(domain, std::move(job), [token, subject](const std::string&, const compliance::Rows& rows) {
                if (compliance::any_failed(rows))
                    log::warning(token + ": " + subject + " fails compliance_check (warn): " +
                                 compliance::failures_text(rows));
            });
            continue;
        }
        const compliance::Rows rows = checks_.check(domain, std::move(job)).get();
        if (!compliance::any_failed(rows)) continue;
        const std::string why = "compliance_check: " + subject + " fails: " + compliance::failures_text(rows);
        try {
            auto job = store_.job(job_id);
            if (job && job->state != store::JobState::held) store_.hold(job_id, why);
            log::warning(token + ": held: " + why);
            held.insert(job_id);
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error(token + ": cannot hold the job for compliance_check: " + e.what());
            held.insert(job_id);  // its recipients go back, due again, and are checked then
            compliance_seen_.forget(job_id);
        }
    }
}

}  // namespace mxlane::qrunner
