// reports: what a report says (bounce, complaint, unsubscribe), read and recorded in the queue store.
#include "milter/reports.hpp"

#include <cctype>
#include <cstdio>
#include <optional>

#include "libshared/address.hpp"
#include "libshared/bounce_class.hpp"
#include "libshared/delivery_report.hpp"
#include "libshared/log.hpp"
#include "libshared/printable.hpp"
#include "libshared/recipient_token.hpp"
#include "libshared/webhook_spool.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::milter {
namespace {

using store::QueueStore;
using store::Recipient;

// A line's outcome for one report recipient, and the event of what it changed.
struct Step {
    Step(bool r = false, std::string l = {}, std::optional<Event> e = std::nullopt)
        : recorded(r), log(std::move(l)), event(std::move(e)) {}
    bool recorded;
    std::string log;
    std::optional<Event> event;
};

// The event of a change to recipient r (type bounced, complaint, unsubscribed).
std::optional<Event> event_of(QueueStore& q, const ReportSettings& s, const Recipient& r, std::string type,
                              std::int64_t now) {
    if (!s.events_on()) return std::nullopt;
    Event e;
    e.type = std::move(type);
    e.time_ms = now;
    e.job = store::format_job_id(r.job_id);
    if (auto j = q.job(r.job_id)) e.job_name = j->name;
    e.recipient = r.address;
    if (!s.event_fields.empty())
        if (auto m = q.message(r.job_id, r.message_id)) e.fields = event_field_values(s.event_fields, m->field_names, r.fields);
    return e;
}

bool same_address(std::string_view a, std::string_view b) { return !a.empty() && to_lower(a) == to_lower(b); }

// The reply code a diagnostic starts with, else 0.
int leading_code(std::string_view text) {
    if (text.size() >= 3 && text[0] >= '2' && text[0] <= '5' && std::isdigit(static_cast<unsigned char>(text[1])) &&
        std::isdigit(static_cast<unsigned char>(text[2])) && (text.size() == 3 || text[3] == ' ' || text[3] == '-'))
        return (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    return 0;
}

// The token's recipient, or why there is none.
std::optional<Recipient> named_recipient(QueueStore& q, const ReportSettings& s, const std::string& token,
                                         std::string& why) {
    auto ref = recipient_token_check(s.queue_directory, token);
    if (!ref) {
        why = "token " + printable(token) + " does not verify";
        return std::nullopt;
    }
    auto r = q.recipient(ref->job_id, ref->seq);
    if (!r) why = store::format_job_id(ref->job_id) + ": the token names no recipient in the queue (job deleted?)";
    return r;
}

Step bounce(QueueStore& q, const ReportSettings& s, const std::string& token, const std::string& text,
            std::int64_t now) {
    std::string why;
    auto r = named_recipient(q, s, token, why);
    if (!r) return {false, "bounce report: " + why};
    const std::string job = store::format_job_id(r->job_id);
    auto dsn = parse_dsn(text);
    if (!dsn) return {false, job + ": bounce report for <" + printable(r->address) + "> that cannot be read"};
    // The report's part about our recipient; a DSN naming only others is not about it.
    const DsnRecipient* part = nullptr;
    bool named_any = false;
    for (const auto& d : dsn->recipients) {
        named_any = named_any || !d.final_recipient.empty() || !d.original_recipient.empty();
        if (same_address(d.final_recipient, r->address) || same_address(d.original_recipient, r->address)) {
            part = &d;
            break;
        }
    }
    if (!part && !named_any && !dsn->recipients.empty()) part = &dsn->recipients.front();
    if (!part)
        return {false, job + ": bounce report (" + dsn->format + ") to the token of <" + printable(r->address) +
                           "> names only other recipients (first: <" +
                           printable(dsn->recipients.front().final_recipient) + ">); nothing changed"};
    const std::string who = job + ": rcpt=<" + printable(r->address) + ">";
    if (part->action != "failed")
        return {true, who + ", report=dsn (" + dsn->format + "), action=" + printable(part->action) +
                          ": nothing to change"};
    const BounceClass cls = classify_reply(leading_code(part->diagnostic), part->status, part->diagnostic);
    const bool suppress = cls == BounceClass::invalid_recipient || cls == BounceClass::bad_domain;
    const std::string status = part->status.empty() ? "5.0.0" : part->status;
    if (!q.bounce_after(r->job_id, r->seq, status, part->diagnostic, suppress, now))
        return {true, who + ", report=dsn (" + dsn->format + "), dsn=" + printable(status) + ": was " +
                          std::string(store::state_name(r->state)) + ", nothing changed"};
    auto event = event_of(q, s, *r, "bounced", now);
    if (event) {
        event->dsn = status;
        event->cls = class_name(cls);
        event->reply = part->diagnostic;
        event->host = part->remote_mta;
    }
    return {true,
            who + ", report=dsn (" + dsn->format + "), dsn=" + printable(status) + " (" + std::string(class_name(cls)) +
                "): bounced after delivery" + (suppress ? ", suppressed (bounce)" : "") + " (" +
                printable(part->diagnostic) + ")",
            std::move(event)};
}

Step unsubscribe(QueueStore& q, const ReportSettings& s, const std::string& token, std::int64_t now) {
    std::string why;
    auto r = named_recipient(q, s, token, why);
    if (!r) return {false, "unsubscribe mail: " + why};
    const bool added = q.suppress(r->address, "unsubscribed", now, r->job_id);
    return {true,
            store::format_job_id(r->job_id) + ": rcpt=<" + printable(r->address) + ">, report=unsubscribe: " +
                (added ? "suppressed (unsubscribed)" : "on the suppression list already"),
            added ? event_of(q, s, *r, "unsubscribed", now) : std::nullopt};
}

std::string percent_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

Step complaint(QueueStore& q, const ReportSettings& s, const std::string& text, std::int64_t now) {
    auto arf = parse_arf(text);
    if (!arf) return {false, "complaint mail that is no feedback report (ARF) that can be read"};
    std::string token = reported_token(s, arf->original_headers);
    if (token.empty()) return {false, "feedback report (" + printable(arf->feedback_type) + ") without a token of ours in the reported message"};
    std::string why;
    auto r = named_recipient(q, s, token, why);
    if (!r) return {false, "feedback report: " + why};
    const std::string job = store::format_job_id(r->job_id);
    const std::string who = job + ": rcpt=<" + printable(r->address) + ">, report=arf (" + printable(arf->feedback_type) + ")";
    if (arf->feedback_type == "not-spam") return {true, who + ": not a complaint, nothing to change"};
    auto counted = q.complaint(r->job_id, r->seq, now);
    if (!counted) return {false, job + ": the complaint's recipient left the queue meanwhile"};
    std::string line = who + ": suppressed (complaint), " + std::to_string(counted->complaints) + " complaints, " +
                       std::to_string(counted->delivered) + " delivered" + (counted->counted ? "" : " (counted before)");
    if (counted->counted && complaint_rate_exceeded(s, counted->complaints, counted->delivered)) {
        auto j = q.job(r->job_id);
        if (j && j->state == store::JobState::done) {
            line += "; over max_complaint_rate, but the job is done: nothing left to hold";
        } else if (j && j->state != store::JobState::held) {
            const double rate = 100.0 * static_cast<double>(counted->complaints) / static_cast<double>(counted->delivered);
            const std::string reason = "complaint rate " + percent_text(rate) + "% over max_complaint_rate " +
                                       percent_text(s.max_complaint_rate) + "% (" +
                                       std::to_string(counted->complaints) + " complaints, " +
                                       std::to_string(counted->delivered) + " delivered)";
            q.hold(r->job_id, reason);
            line += "; job held: " + reason;
        }
    }
    auto event = counted->counted ? event_of(q, s, *r, "complaint", now) : std::nullopt;
    if (event) event->reply = "feedback report (" + arf->feedback_type + ")";
    return {true, line, std::move(event)};
}

}  // namespace

ReportOutcome handle_report(store::QueueStore& q, const ReportSettings& s, const ReportMail& mail, std::int64_t now) {
    ReportOutcome out;
    if (mail.recipients().empty()) return out;
    const std::string text = mail.text();
    bool all = true;
    for (const auto& rr : mail.recipients()) {
        Step st;
        switch (rr.kind) {
            case ReportKind::bounce: st = bounce(q, s, rr.token, text, now); break;
            case ReportKind::unsubscribe: st = unsubscribe(q, s, rr.token, now); break;
            case ReportKind::complaint: st = complaint(q, s, text, now); break;
            case ReportKind::none: break;
        }
        all = all && st.recorded;
        if (!st.log.empty()) out.log.push_back(std::move(st.log));
        if (st.event) out.events.push_back(std::move(*st.event));
    }
    out.recorded = all;
    return out;
}

void write_report_events(const ReportSettings& s, const std::vector<Event>& events) {
    if (events.empty()) return;
    const std::string lines = event_lines(events);
    // Opened for these lines only: reports are few, and a rotated event_log
    // needs no signal to the milter (SIGHUP stops it).
    try {
        if (!s.event_log.empty()) {
            EventLog log;
            log.open(s.event_log);
            log.write(lines);
        }
    } catch (const std::exception& e) {
        log::warning("event_log: " + std::string(e.what()) + "; " + std::to_string(events.size()) + " event(s) not written");
    }
    try {
        if (s.event_webhook) append_to_spool(s.queue_directory, lines);
    } catch (const std::exception& e) {
        log::warning("event_webhook: " + std::string(e.what()) + "; " + std::to_string(events.size()) +
                     " event(s) not spooled");
    }
}

}  // namespace mxlane::milter
