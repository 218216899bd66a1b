// callbacks: the xxfi_* table; thin steps that feed the message context and ask the intake policy.
#include "milter/callbacks.hpp"

#include <libmilter/mfdef.h>

#include <exception>
#include <memory>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::milter {
namespace {

const MilterSettings* g_settings = nullptr;  // set once before smfi_main, read-only after

// One SMTP connection from the MTA: at most one message in progress.
struct Connection {
    bool lead_space = false;  // SMFIP_HDR_LEADSPC: header values keep their own leading space
    std::unique_ptr<MessageContext> msg;
};

Connection* connection(SMFICTX* ctx) {
    auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
    if (!c) {
        c = new Connection;
        smfi_setpriv(ctx, c);
    }
    return c;
}

// smfi_setreply takes a format-like text: no CR/LF, '%' doubled.
std::string reply_text(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\r' || c == '\n') out += ' ';
        else if (c == '%') out += "%%";
        else out += c;
    }
    return out;
}

sfsistat tempfail(SMFICTX* ctx, const char* code, const char* dsn, const std::string& why) {
    std::string text = reply_text(why);
    smfi_setreply(ctx, const_cast<char*>(code), const_cast<char*>(dsn), text.data());
    const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
    log::warning(std::string(qid && *qid ? qid : "NOQUEUE") + ": tempfail " + code + " " + dsn + " " + why);
    if (auto* c = static_cast<Connection*>(smfi_getpriv(ctx))) c->msg.reset();
    return SMFIS_TEMPFAIL;
}

// Any internal error becomes a 4xx saying why: the client keeps its copy and retries.
template <class F>
sfsistat guarded(SMFICTX* ctx, const char* what, F&& f) {
    try {
        return f();
    } catch (const IntakeRefused& e) {
        return tempfail(ctx, e.code, e.dsn, e.what());
    } catch (const std::exception& e) {
        return tempfail(ctx, "451", "4.3.0", std::string("mxlane: ") + what + ": " + e.what());
    } catch (...) {
        return tempfail(ctx, "451", "4.3.0", std::string("mxlane: ") + what + ": unknown error");
    }
}

sfsistat too_large(SMFICTX* ctx, const MessageContext& m) {
    return tempfail(ctx, "452", "4.3.4",
                    "mxlane: message too large for the bulk lane (message_size_limit is " +
                        std::to_string(m.size_limit()) + " bytes)");
}

// Ordinary mail goes back to the MTA at the first step where no rule can still match.
sfsistat decide_at(SMFICTX* ctx, Connection* c, Step step) {
    if (!c->msg) return SMFIS_ACCEPT;
    if (decide(g_settings->policy, c->msg->facts, step) == Verdict::ordinary) {
        c->msg.reset();
        return SMFIS_ACCEPT;
    }
    (void)ctx;
    return SMFIS_CONTINUE;
}

// A message the qrunner relayed carries our token: it is on its way out, not in.
bool relayed_by_us(const MessageContext& m) {
    for (const auto& token : m.loop_tokens)
        if (loop_token_valid(g_settings->queue_directory, token, kLoopTokenMaxAge)) return true;
    return false;
}

// The macros we read: the queue id and the SASL login, both known at MAIL.
// Every other stage asks for one the MTA does not define, so that it sends
// no macro packet there (each is one more trip through libmilter's workers:
// 10 recipients would be 10 more).
void request_macros(SMFICTX* ctx) {
    smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen}"));
    for (int stage : {SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOH, SMFIM_EOM})
        smfi_setsymlist(ctx, stage, const_cast<char*>("{mxlane_none}"));
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    Connection* c = connection(ctx);
    *pf0 = g_settings->hold ? (f0 & SMFIF_QUARANTINE) : 0;
    // Steps we never look at, and header values exactly as received.
    *pf1 = f1 & (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC);
    c->lead_space = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) {
        *pf0 |= SMFIF_SETSYMLIST;
        request_macros(ctx);
    }
    return SMFIS_CONTINUE;
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "cannot take the sender", [&] {
        Connection* c = connection(ctx);
        c->msg = std::make_unique<MessageContext>(g_settings->queue_directory + "/tmp", g_settings->size_limit);
        MessageContext& m = *c->msg;
        m.set_sender(argv);
        const char* login = smfi_getsymval(ctx, const_cast<char*>("{auth_authen}"));
        if (login) m.set_login(login);
        m.facts.bulk_sender = sender_is_bulk(g_settings->policy, m.sender());
        m.facts.bulk_login = sasl_login_is_bulk(g_settings->policy, m.login());
        return decide_at(ctx, c, Step::envfrom);
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "cannot take the recipient", [&] {
        Connection* c = connection(ctx);
        if (c->msg && argv && argv[0]) c->msg->add_recipient(argv[0]);
        return SMFIS_CONTINUE;
    });
}

sfsistat on_data(SMFICTX* ctx) { return decide_at(ctx, connection(ctx), Step::data); }

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, "cannot take a header field", [&] {
        Connection* c = connection(ctx);
        if (!c->msg) return SMFIS_CONTINUE;
        MessageContext& m = *c->msg;
        std::string_view n(name ? name : ""), v(value ? value : "");
        if (is_bulk_header(g_settings->policy, n)) {
            // The recipients should not see our routing header; the first one names the job.
            if (!m.facts.bulk_header_seen) m.job_name = job_name_from_header(v);
            m.facts.bulk_header_seen = true;
            return SMFIS_CONTINUE;
        }
        if (to_lower(n) == to_lower(kLoopHeader)) m.loop_tokens.emplace_back(v);
        m.add_header(n, v, c->lead_space);
        return m.too_large() ? too_large(ctx, m) : SMFIS_CONTINUE;
    });
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(ctx, "cannot check the message", [&] {
        Connection* c = connection(ctx);
        sfsistat r = decide_at(ctx, c, Step::eoh);
        if (r != SMFIS_CONTINUE) return r;
        if (relayed_by_us(*c->msg)) {
            const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
            log::info(std::string(qid && *qid ? qid : "NOQUEUE") +
                      ": relayed by mxlane (valid " + kLoopHeader + "), returned to the MTA");
            c->msg.reset();
            return SMFIS_ACCEPT;
        }
        c->msg->end_of_headers();
        return SMFIS_CONTINUE;
    });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    return guarded(ctx, "cannot take the body", [&] {
        Connection* c = connection(ctx);
        if (!c->msg) return SMFIS_CONTINUE;
        c->msg->add_body(std::string_view(reinterpret_cast<const char*>(chunk), len));
        return c->msg->too_large() ? too_large(ctx, *c->msg) : SMFIS_CONTINUE;
    });
}

sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, "cannot store the job", [&] {
        Connection* c = connection(ctx);
        if (!c->msg) return SMFIS_CONTINUE;
        MessageContext& m = *c->msg;
        if (m.too_large()) return too_large(ctx, m);
        const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
        std::string queue_id = qid ? qid : "";
        // The commit is durable before any answer: from here on the job is ours.
        Enqueued e = g_settings->intake->enqueue(m, queue_id);
        std::string job = store::format_job_id(e.job_id);
        sfsistat r = SMFIS_DISCARD;
        std::string action = "discard";
        if (g_settings->hold) {
            std::string reason = "mxlane: job " + job;
            if (smfi_quarantine(ctx, reason.data()) == MI_SUCCESS) {
                r = SMFIS_ACCEPT;
                action = "hold";
            } else {
                log::warning(job + ": the MTA refused to quarantine the original; discarding it (the job is stored)");
            }
        }
        log::info(intake_log_line(e, m, queue_id, action));
        c->msg.reset();
        return r;
    });
}

sfsistat on_abort(SMFICTX* ctx) {
    if (auto* c = static_cast<Connection*>(smfi_getpriv(ctx))) c->msg.reset();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    delete static_cast<Connection*>(smfi_getpriv(ctx));  // may be NULL: close can be the only call
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

smfiDesc filter_description(const MilterSettings& settings) {
    g_settings = &settings;
    smfiDesc d{};
    d.xxfi_name = const_cast<char*>("mxlane");
    d.xxfi_version = SMFI_VERSION;
    d.xxfi_flags = settings.hold ? SMFIF_QUARANTINE : 0;
    d.xxfi_envfrom = on_envfrom;
    d.xxfi_envrcpt = on_envrcpt;
    d.xxfi_header = on_header;
    d.xxfi_eoh = on_eoh;
    d.xxfi_body = on_body;
    d.xxfi_eom = on_eom;
    d.xxfi_abort = on_abort;
    d.xxfi_close = on_close;
    d.xxfi_data = on_data;
    d.xxfi_negotiate = on_negotiate;
    return d;
}

}  // namespace mxlane::milter
