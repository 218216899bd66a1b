// scheduler_dkim: DKIM at message load: a plain message signed once for all its transactions; missing keys.
#include <boost/asio/post.hpp>

#include <latch>

#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

void Scheduler::dkim_at_load(const std::shared_ptr<MessageData>& m, const Settings& s) {
    if (!m->meta.personalised) {
        loaded_unsigned_.push_back(m);  // signed with the others of this claim (dkim_sign_loaded)
        return;
    }
    // Signed per recipient on the wire (delivery); here only the key is
    // looked for, by the stored From: (unless that is personalised too).
    const std::string domain = dkim::from_domain(m->text);
    if (domain.find("{{") != std::string::npos || s.dkim->keys().keys_for(domain)) return;
    dkim_missing(*m, s, domain);
}

// The plain messages a claim loaded, signed side by side on the signing pool
// (the store thread waits: what it would do next needs them signed).
void Scheduler::dkim_sign_loaded(const Settings& s) {
    auto batch = std::exchange(loaded_unsigned_, {});
    if (batch.empty()) return;
    std::vector<dkim::Signed> signed_(batch.size());
    std::vector<std::string> errors(batch.size());
    std::latch done(static_cast<std::ptrdiff_t>(batch.size()));
    for (std::size_t i = 0; i < batch.size(); ++i)
        asio::post(sign_pool_, [&, i] {
            try {
                signed_[i] = s.dkim->sign(*batch[i]->wire);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
            done.count_down();
        });
    done.wait();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        MessageData& m = *batch[i];
        const std::string what = m.job_token + ": message " + std::to_string(m.meta.id);
        if (!errors[i].empty()) {
            m.sign_error = errors[i];
            log::error(what + ": " + errors[i] + "; its recipients are deferred");
        } else if (!signed_[i].is_signed()) {
            dkim_missing(m, s, signed_[i].from_domain);
        } else {
            m.wire = std::make_shared<const std::string>(std::move(signed_[i].text));
            // A line of its own, as OpenDKIM's milter writes it (never inside the delivery lines).
            log::info(what + ": DKIM-Signature field added (" + signed_[i].summary() + ")");
        }
    }
}

void Scheduler::dkim_missing(MessageData& m, const Settings& s, const std::string& domain) {
    // mxlane's own reports to senders (From: MAILER-DAEMON@myhostname) are
    // never held for a key: they go unsigned when the host's domain has none.
    if (is_notification(m.meta)) return;
    const std::string why = "no DKIM key in dkim_key_table for the From: domain " +
                            (domain.empty() ? std::string("(the message has no From: address)") : domain);
    if (!s.dkim_hold) {
        if (first_sight(dkim_warned_, m.meta.job_id)) log::warning(m.job_token + ": " + why + ": sent unsigned");
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
