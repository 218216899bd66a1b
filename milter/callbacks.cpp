// callbacks: the xxfi_* table; thin steps that feed the message context and ask the intake policy.
#include "milter/callbacks.hpp"

#include <libmilter/mfdef.h>

#include <exception>
#include <memory>
#include <optional>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "libshared/header_section.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::milter {
namespace {

const MilterSettings* g_settings = nullptr;  // set once before smfi_main, read-only after

// A refusal met at a step the MTA expects no answer to, told at the next step that has one.
struct Refusal {
    std::string code, dsn, why;
    bool permanent() const { return code.starts_with('5'); }
};

// One SMTP connection from the MTA: at most one message in progress.
struct Connection {
    bool may_send_bulk = false; // SASL login aside: the client is in bulk_clients (xxfi_connect)
    bool lead_space = false;    // SMFIP_HDR_LEADSPC: header values keep their own leading space
    unsigned long no_reply = 0; // the SMFIP_NR_* steps the MTA does not wait for
    std::unique_ptr<MessageContext> msg;
    std::unique_ptr<ReportMail> report;  // while every recipient is a report address
    std::optional<Refusal> refusal;
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

// The answer to a step that has nothing to say: none at all where the MTA does not wait for one.
sfsistat go_on(const Connection* c, unsigned long step) {
    return (c->no_reply & step) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

// The answer that hands the message back to the MTA; where the MTA does not wait for one,
// it simply passes the rest of the message by. A message that may be a report is read on.
sfsistat let_go(const Connection* c, unsigned long step) {
    return (c->no_reply & step) ? SMFIS_NOREPLY : c->report ? SMFIS_CONTINUE : SMFIS_ACCEPT;
}

sfsistat say_refusal(SMFICTX* ctx, const Refusal& r) {
    std::string text = reply_text(r.why);
    smfi_setreply(ctx, const_cast<char*>(r.code.c_str()), const_cast<char*>(r.dsn.c_str()), text.data());
    return r.permanent() ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

// The MTA's queue id; Postfix knows it from DATA on (asked for at end of message).
std::string host_queue_id(SMFICTX* ctx) {
    const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
    return qid ? qid : "";
}

// Refuses the message (4xx: the client retries; 5xx: it never can fit): at this step,
// or at the next one that has an answer (the message is dropped at once; the steps in
// between pass it by).
sfsistat refuse(SMFICTX* ctx, unsigned long step, const char* code, const char* dsn, const std::string& why) {
    Refusal r{code, dsn, why};
    std::string qid = host_queue_id(ctx);
    log::warning((qid.empty() ? "NOQUEUE" : qid) + (r.permanent() ? ": reject " : ": tempfail ") + code + " " + dsn +
                 " " + why);
    auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
    if (!c) return say_refusal(ctx, r);
    c->msg.reset();
    if (c->no_reply & step) {
        c->refusal = std::move(r);
        return SMFIS_NOREPLY;
    }
    c->refusal.reset();
    return say_refusal(ctx, r);
}

// A refusal kept from a step without an answer, said now (step has one).
std::optional<sfsistat> pending_refusal(SMFICTX* ctx, Connection* c, unsigned long step) {
    if (!c->refusal || (c->no_reply & step)) return std::nullopt;
    Refusal r = std::move(*c->refusal);
    c->refusal.reset();
    return say_refusal(ctx, r);
}

// Any internal error becomes a 4xx saying why: the client keeps its copy and retries.
// step: the SMFIP_NR_* bit of the milter step (0 for end of message, which always has an answer).
template <class F>
sfsistat guarded(SMFICTX* ctx, unsigned long step, const char* what, F&& f) {
    try {
        return f();
    } catch (const IntakeRefused& e) {
        return refuse(ctx, step, e.code, e.dsn, e.what());
    } catch (const std::exception& e) {
        // A panicked store: the MTA sees the milter go and tempfails; a restart runs recovery.
        store::fatal_if_panic(e);
        return refuse(ctx, step, "451", "4.3.0", std::string("mxlane: ") + what + ": " + e.what());
    } catch (...) {
        return refuse(ctx, step, "451", "4.3.0", std::string("mxlane: ") + what + ": unknown error");
    }
}

// A message over the limit never fits however often it is retried: 552 (RFC 5321 4.5.3.1.10).
sfsistat too_large(SMFICTX* ctx, unsigned long step, const MessageContext& m) {
    return refuse(ctx, step, "552", "5.3.4",
                  "mxlane: message too large for the bulk lane (message_size_limit is " +
                      std::to_string(m.size_limit()) + " bytes)");
}

// Ordinary mail goes back to the MTA at the first step where no rule can still match.
sfsistat decide_at(SMFICTX* ctx, Connection* c, Step step, unsigned long nr_bit) {
    if (auto r = pending_refusal(ctx, c, nr_bit)) return *r;
    if (!c->msg) return let_go(c, nr_bit);
    if (decide(g_settings->policy, c->msg->facts, step) == Verdict::ordinary) {
        c->msg.reset();
        return let_go(c, nr_bit);
    }
    return go_on(c, nr_bit);
}

// A message the qrunner relayed carries our token, made for this very
// transaction: its envelope and body. A token copied into other mail is not ours.
bool relayed_by_us(MessageContext& m) {
    if (m.loop_tokens.empty()) return false;
    const LoopBinding seen{m.sender(), m.recipients(), m.body_digest()};
    for (const auto& token : m.loop_tokens)
        if (loop_token_valid(g_settings->queue_directory, token, kLoopTokenMaxAge, seen)) return true;
    return false;
}

// Back to the MTA untouched, with a line saying why.
void log_returned(SMFICTX* ctx, const std::string& why) {
    std::string qid = host_queue_id(ctx);
    log::info((qid.empty() ? "NOQUEUE" : qid) + ": " + why + ", returned to the MTA");
}

// The macros we read: the SASL login at MAIL, and the queue id at MAIL (Sendmail
// knows it there, for the log of an early refusal), at the end of the headers (to
// tell the fields Postfix inserted) and at the end of the message (Postfix assigns
// it only after MAIL). Every other stage asks for one the MTA does not define, so
// that it sends no macro packet there (each is one more packet to write and read: 10
// recipients would be 10 more).
void request_macros(SMFICTX* ctx) {
    smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen}"));
    smfi_setsymlist(ctx, SMFIM_EOH, const_cast<char*>("i"));
    smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
    for (int stage : {SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVRCPT, SMFIM_DATA})
        smfi_setsymlist(ctx, stage, const_cast<char*>("{mxlane_none}"));
}

// The steps whose answer could change anything, given the intake rules; the MTA is told not
// to wait for the others. Each answer is a round trip between the MTA and the milter, so a
// 10-recipient bulk message needs two (end of headers, end of message; three on libmilter,
// with the body) instead of twenty. Recipients and header fields never decide (a refusal there waits for the next
// answer); MAIL decides only when neither the count nor the header rule is on, DATA only for
// the count rule alone (otherwise it is not sent at all), end of headers only for the header
// rule. Body chunks need no answer either on mxlane's own engine; on libmilter they keep
// theirs: libmilter would skip end of message after a silent chunk that came with it, and
// the MTA would wait for an answer that never comes.
unsigned long quiet_steps(const IntakePolicy& p) {
    bool header_rule = !p.bulk_header.empty(), count_rule = p.min_recipients > 0;
    unsigned long quiet = SMFIP_NR_CONN | SMFIP_NR_RCPT | SMFIP_NR_HDR;
#ifdef MXLANE_OWN_MILTER_ENGINE
    quiet |= SMFIP_NR_BODY;
#endif
    if (header_rule || count_rule) quiet |= SMFIP_NR_MAIL;
    if (header_rule || !count_rule) quiet |= SMFIP_NODATA;
    if (!header_rule) quiet |= SMFIP_NR_EOH;
    return quiet;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    Connection* c = connection(ctx);
    *pf0 = g_settings->hold ? (f0 & SMFIF_QUARANTINE) : 0;
    // Steps we never look at or need no answer to (as far as the MTA offers), and header
    // values exactly as received.
    *pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC | quiet_steps(g_settings->policy));
    c->lead_space = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    c->no_reply = *pf1 & (SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY);
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) {
        *pf0 |= SMFIF_SETSYMLIST;
        request_macros(ctx);
    }
    return SMFIS_CONTINUE;
}

// Who the client is decides whether its mail may be bulk at all (bulk_clients).
sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR* hostaddr) {
    return guarded(ctx, SMFIP_NR_CONN, "cannot take the client", [&] {
        Connection* c = connection(ctx);
        c->may_send_bulk = client_may_send_bulk(g_settings->policy, hostaddr);
        return go_on(c, SMFIP_NR_CONN);
    });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    if (auto* c = static_cast<Connection*>(smfi_getpriv(ctx))) c->refusal.reset();  // a new message
    return guarded(ctx, SMFIP_NR_MAIL, "cannot take the sender", [&] {
        Connection* c = connection(ctx);
        c->report.reset();
        if (g_settings->reports.on()) c->report = std::make_unique<ReportMail>();
        const char* login = smfi_getsymval(ctx, const_cast<char*>("{auth_authen}"));
        // Mail from outsiders never enters the bulk lane: it goes on through the MTA untouched.
        if (!(login && *login) && !c->may_send_bulk) {
            c->msg.reset();
            return let_go(c, SMFIP_NR_MAIL);
        }
        c->msg = std::make_unique<MessageContext>(g_settings->queue_directory + "/tmp", g_settings->size_limit);
        MessageContext& m = *c->msg;
        m.set_sender(argv);
        if (login) m.set_login(login);
        m.facts.bulk_sender = sender_is_bulk(g_settings->policy, m.sender());
        m.facts.bulk_login = sasl_login_is_bulk(g_settings->policy, m.login());
        return decide_at(ctx, c, Step::envfrom, SMFIP_NR_MAIL);
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, SMFIP_NR_RCPT, "cannot take the recipient", [&] {
        Connection* c = connection(ctx);
        if (c->msg && argv && argv[0]) c->msg->add_recipient(argv[0]);
        // One recipient that is no report address: the message is no report.
        if (c->report && !(argv && argv[0] && c->report->add_recipient(g_settings->reports, argv[0])))
            c->report.reset();
        return go_on(c, SMFIP_NR_RCPT);
    });
}

sfsistat on_data(SMFICTX* ctx) {
    return guarded(ctx, SMFIP_NR_DATA, "cannot check the message",
                   [&] { return decide_at(ctx, connection(ctx), Step::data, SMFIP_NR_DATA); });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(ctx, SMFIP_NR_HDR, "cannot take a header field", [&] {
        Connection* c = connection(ctx);
        std::string_view n(name ? name : ""), v(value ? value : "");
        if (c->report) c->report->add_header(n, v, c->lead_space);
        if (!c->msg) return go_on(c, SMFIP_NR_HDR);
        MessageContext& m = *c->msg;
        m.key_fields.note(g_settings->policy, n, v);
        if (is_bulk_header(g_settings->policy, n)) {
            // The recipients should not see our routing header.
            m.facts.bulk_header_seen = true;
            return go_on(c, SMFIP_NR_HDR);
        }
        if (is_pool_header(g_settings->policy, n)) {
            // Routing too, and removed: the first one names the pool (the qrunner checks it exists).
            if (m.pool.empty()) m.pool = job_name_from_header(v);
            return go_on(c, SMFIP_NR_HDR);
        }
        if (same_field_name(n, kLoopHeader)) m.loop_tokens.emplace_back(v);
        if (same_field_name(n, "Received") && is_own_trace(v, g_settings->myhostname)) m.sent_by_us = true;
        m.add_header(n, v, c->lead_space);
        return m.too_large() ? too_large(ctx, SMFIP_NR_HDR, m) : go_on(c, SMFIP_NR_HDR);
    });
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(ctx, SMFIP_NR_EOH, "cannot check the message", [&] {
        Connection* c = connection(ctx);
        if (c->report) c->report->end_of_headers();
        sfsistat r = decide_at(ctx, c, Step::eoh, SMFIP_NR_EOH);
        if (!c->msg) return r;
        // A relay token is checked at the end, against the body it was made for.
        if (!c->msg->loop_tokens.empty()) {
            c->msg->start_body_digest();
        } else if (c->msg->sent_by_us) {
            log_returned(ctx, "sent by this host's mxlane already (its Received: line)");
            c->msg.reset();
            return let_go(c, SMFIP_NR_EOH);
        }
        c->msg->discount_mta_fields(host_queue_id(ctx));
        c->msg->end_of_headers();
        return r;
    });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    return guarded(ctx, SMFIP_NR_BODY, "cannot take the body", [&] {
        Connection* c = connection(ctx);
        if (c->report && !c->report->add_body(std::string_view(reinterpret_cast<const char*>(chunk), len))) {
            log_returned(ctx, "report of more than " + std::to_string(ReportMail::kMaxReportSize) + " bytes not read");
            c->report.reset();
        }
        // Neither bulk nor a report (nor a refusal still to say at the end): the rest passes by.
        if (!c->msg) return c->report || c->refusal ? go_on(c, SMFIP_NR_BODY) : let_go(c, SMFIP_NR_BODY);
        c->msg->add_body(std::string_view(reinterpret_cast<const char*>(chunk), len));
        return c->msg->too_large() ? too_large(ctx, SMFIP_NR_BODY, *c->msg) : go_on(c, SMFIP_NR_BODY);
    });
}

sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, 0, "cannot store the job", [&] {
        Connection* c = connection(ctx);
        if (auto r = pending_refusal(ctx, c, 0)) return *r;
        if (c->report) {
            std::unique_ptr<ReportMail> report = std::move(c->report);
            // A store failure throws: the report gets a 4xx and comes again.
            ReportOutcome o = g_settings->intake->with_store([&](store::QueueStore& q) {
                return handle_report(q, g_settings->reports, *report, store::now_ms());
            });
            std::string qid = host_queue_id(ctx);
            if (qid.empty()) qid = "NOQUEUE";
            for (const auto& line : o.log) log::info(qid + ": " + line);
            write_report_events(g_settings->reports, o.events);
            if (o.recorded) {
                log::info(qid + ": report recorded, action=discard");
                c->msg.reset();
                return SMFIS_DISCARD;
            }
            log_returned(ctx, "report not recorded");
        }
        if (!c->msg) return SMFIS_CONTINUE;
        MessageContext& m = *c->msg;
        if (const bool relayed = relayed_by_us(m); relayed || m.sent_by_us) {
            log_returned(ctx, relayed ? "relayed by mxlane (valid " + std::string(kLoopHeader) + ")"
                                      : std::string("sent by this host's mxlane already (its Received: line)"));
            c->msg.reset();
            return SMFIS_CONTINUE;
        }
        if (m.too_large()) return too_large(ctx, 0, m);
        std::string queue_id = host_queue_id(ctx);
        // The commit is durable before any answer: from here on the job is ours.
        Enqueued e = g_settings->intake->enqueue(m, queue_id, job_key(m.key_fields), g_settings->policy.job_idle_close_ms);
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
        log::info(size_log_line(e, m));
        if (action == "hold" && e.new_job)
            log::info(job + ": the originals of this job wait in the MTA's hold queue (intercept_action = hold) "
                            "and mxlane never removes them: delete each once the job is delivered (Postfix: "
                            "postsuper -d QUEUE_ID hold, with the queue_id of each intake line)");
        c->msg.reset();
        return r;
    });
}

sfsistat on_abort(SMFICTX* ctx) {
    if (auto* c = static_cast<Connection*>(smfi_getpriv(ctx))) {
        c->msg.reset();
        c->report.reset();
        c->refusal.reset();
    }
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
    d.xxfi_connect = on_connect;
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
