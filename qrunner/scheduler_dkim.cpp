// scheduler_dkim: DKIM at message load: a plain message signed once for all its transactions; missing keys.
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

void Scheduler::dkim_at_load(MessageData& m, const Settings& s) {
    const std::string what = m.job_token + ": message " + std::to_string(m.meta.id);
    if (m.meta.personalised) {
        // Signed per recipient on the wire (delivery); here only the key is
        // looked for, by the stored From: (unless that is personalised too).
        const std::string domain = dkim::from_domain(m.text);
        if (domain.find("{{") != std::string::npos || s.dkim->keys().keys_for(domain)) return;
        dkim_missing(m, s, domain);
        return;
    }
    try {
        auto sig = s.dkim->sign(*m.wire);
        if (!sig.is_signed()) {
            dkim_missing(m, s, sig.from_domain);
            return;
        }
        m.wire = std::make_shared<const std::string>(std::move(sig.text));
        // A line of its own, as OpenDKIM's milter writes it (never inside the delivery lines).
        log::info(what + ": DKIM-Signature field added (" + sig.summary() + ")");
    } catch (const dkim::SignError& e) {
        m.sign_error = e.what();
        log::error(what + ": " + e.what() + "; its recipients are deferred");
    }
}

void Scheduler::dkim_missing(MessageData& m, const Settings& s, const std::string& domain) {
    const std::string why = "no DKIM key in dkim_key_table for the From: domain " +
                            (domain.empty() ? std::string("(the message has no From: address)") : domain);
    if (!s.dkim_hold) {
        if (dkim_warned_.insert(m.meta.job_id).second) log::warning(m.job_token + ": " + why + ": sent unsigned");
        return;
    }
    m.dkim_hold = true;
    try {
        auto job = store_.job(m.meta.job_id);
        if (job && job->state != store::JobState::held) {
            store_.hold(m.meta.job_id, why);
            log::warning(m.job_token + ": held: " + why + " (dkim_missing_key = hold)");
        }
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        m.dkim_hold = false;  // deferred instead: not held, it would only come back due
        m.sign_error = "cannot hold the job for its missing DKIM key: " + std::string(e.what());
        log::error(m.job_token + ": " + m.sign_error);
    }
}

}  // namespace mxlane::qrunner
