// notify: reports to senders: a summary when a job finishes, or an RFC 3464 DSN per failed recipient.
#include "qrunner/notify.hpp"

#include <sstream>

#include "libshared/csv.hpp"
#include "libshared/dates.hpp"
#include "libshared/header_section.hpp"
#include "libshared/log.hpp"
#include "libshared/render_plan.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::qrunner {

using store::RcptState;

namespace {

constexpr std::string_view kSummaryKey = "mxlane-notify:summary:";
constexpr std::string_view kDsnKey = "mxlane-notify:dsn:";
constexpr std::size_t kListedInText = 50;   // failures named in the summary's text part
constexpr std::size_t kMaxReplyText = 500;  // keeps every line far below RFC 5322's 998
constexpr std::size_t kMaxHeaders = 64 * 1024;

bool failed_state(RcptState s) {
    return s == RcptState::bounced || s == RcptState::expired || s == RcptState::suppressed;
}

// One header-safe line: no CR/LF, no control characters, bounded.
std::string one_line(std::string_view text, std::size_t max = kMaxReplyText) {
    std::string out;
    for (char c : text) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        auto u = static_cast<unsigned char>(c);
        out += u < 0x20 || u == 0x7f ? ' ' : c;
    }
    return out;
}

// A boundary no part contains: it names the job and the time of writing.
std::string boundary_for(const std::string& job_token, std::int64_t now, std::string_view what) {
    return "=_mxlane_" + std::string(what) + "_" + job_token + "_" + std::to_string(now);
}

std::string encoding_for(std::string_view text) {
    return smtp::has_eight_bit(text) ? "8bit" : "7bit";
}

// From, To, Date, Message-ID, Auto-Submitted (RFC 3834 5), MIME-Version.
std::string common_headers(const std::string& hostname, const std::string& to, const std::string& subject,
                           const std::string& id_part, std::int64_t now) {
    std::string h;
    h += "From: Mail Delivery System <MAILER-DAEMON@" + hostname + ">\n";
    h += "To: <" + one_line(to) + ">\n";
    h += "Subject: " + one_line(subject, 900) + "\n";
    h += "Date: " + rfc5322_date(now) + "\n";
    h += "Message-ID: <" + id_part + "." + std::to_string(now) + "@" + hostname + ">\n";
    h += "Auto-Submitted: auto-replied\n";
    h += "MIME-Version: 1.0\n";
    return h;
}

std::string remote_mta(const std::string& host) {
    // "mx1.example.com[192.0.2.7]:25" -> "mx1.example.com"
    return host.substr(0, host.find('['));
}

std::string status_of(const store::Recipient& r) {
    if (r.dsn.size() >= 5 && (r.dsn[0] == '4' || r.dsn[0] == '5') && r.dsn[1] == '.') return r.dsn;
    return r.state == RcptState::expired ? "4.4.7" : "5.0.0";
}

std::string failure_text(const store::Recipient& r) {
    std::string why = r.reply_text.empty() ? std::string(store::state_name(r.state)) : one_line(r.reply_text);
    if (r.state == RcptState::expired) return "message has been in the queue too long (last reply: " + why + ")";
    if (r.state == RcptState::suppressed) return "not sent: the address is on the suppression list";
    if (!r.host.empty()) return "host " + r.host + " said: " + why;
    return why;
}

}  // namespace

bool is_notification(const store::Message& m) {
    return m.sender.empty() && m.host_queue_id.starts_with(kNotifyJobPrefix);
}

// ---------------------------------------------------------------- the summary

std::string render_summary(const JobReport& r, std::int64_t now) {
    std::uint64_t total = 0, failed = 0;
    for (std::size_t i = 0; i < store::kStateCount; ++i) {
        total += r.counts[i];
        if (failed_state(static_cast<RcptState>(i))) failed += r.counts[i];
    }
    std::string title = r.job_token + (r.job_name.empty() ? "" : " (" + r.job_name + ")");

    std::ostringstream text;
    text << "This is the mail system at host " << r.hostname << ".\n\n"
         << "Your bulk job " << title << " has finished.\n\n"
         << "  submitted:  " << iso_time(r.created) << "\n"
         << "  finished:   " << iso_time(r.finished) << "\n"
         << "  recipients: " << total << "\n";
    for (std::size_t i = 0; i < store::kStateCount; ++i)
        if (r.counts[i]) {
            std::string name(store::state_name(static_cast<RcptState>(i)));
            text << "  " << name << ":" << std::string(11 - std::min<std::size_t>(10, name.size()), ' ')
                 << r.counts[i] << "\n";
        }
    std::uint64_t listed = 0;
    for (const auto& [reason, n] : r.suppressions) listed += n;
    if (listed) text << "  added to the suppression list: " << store::suppression_summary(r.suppressions) << "\n";
    if (failed == 0) {
        text << "\nEvery recipient was delivered or handed to the relay.\n";
    } else {
        text << "\n" << failed << " recipient" << (failed == 1 ? " was" : "s were")
             << " not delivered; the attached CSV lists "
             << (r.truncated ? "the first " + std::to_string(r.failed.size()) : std::string("all of them"))
             << ". `mxlanectl export " << r.job_token << "` writes the full list.\n\n";
        for (std::size_t i = 0; i < r.failed.size() && i < kListedInText; ++i)
            text << "<" << one_line(r.failed[i].address) << ">: " << store::state_name(r.failed[i].state)
                 << (store::failure_class(r.failed[i]).empty() ? "" : " (" + std::string(store::failure_class(r.failed[i])) + ")")
                 << ": " << failure_text(r.failed[i]) << "\n";
        if (r.failed.size() > kListedInText) text << "... and " << (failed - kListedInText) << " more\n";
    }

    std::ostringstream csv;
    write_csv_record(csv, {"address", "state", "dsn", "reply", "host", "attempts", "last_attempt", "class"});
    for (const auto& f : r.failed)
        write_csv_record(csv,
                         {one_line(f.address), std::string(store::state_name(f.state)), f.dsn,
                          one_line(f.reply_text), f.host, std::to_string(f.attempts), iso_time(f.last_attempt),
                          std::string(store::failure_class(f))},
                         CsvCells::inert);

    std::string b = boundary_for(r.job_token, now, "summary");
    std::string body_text = text.str(), body_csv = csv.str();
    std::string subject = "Delivery report for job " + title + ": " + std::to_string(total - failed) + " of " +
                          std::to_string(total) + " delivered";
    std::string out = common_headers(r.hostname, r.sender, subject, r.job_token + ".summary", now);
    out += "Content-Type: multipart/mixed; boundary=\"" + b + "\"\n\n";
    out += "This is a MIME-encapsulated message.\n\n";
    out += "--" + b + "\n";
    out += "Content-Type: text/plain; charset=utf-8\n";
    out += "Content-Transfer-Encoding: " + encoding_for(body_text) + "\n\n";
    out += body_text + "\n";
    out += "--" + b + "\n";
    out += "Content-Type: text/csv; charset=utf-8; name=\"" + r.job_token + "-failed.csv\"\n";
    out += "Content-Disposition: attachment; filename=\"" + r.job_token + "-failed.csv\"\n";
    out += "Content-Transfer-Encoding: " + encoding_for(body_csv) + "\n\n";
    out += body_csv + "\n";
    out += "--" + b + "--\n";
    return out;
}

// ---------------------------------------------------------------- the DSN

std::string render_dsn(const FailureReport& r, std::int64_t now) {
    const store::Recipient& rc = r.rcpt;
    std::string address = one_line(rc.address);
    std::ostringstream text;
    text << "This is the mail system at host " << r.hostname << ".\n\n"
         << "I'm sorry to have to inform you that your message could not\n"
         << "be delivered to the recipient below. The undelivered message's\n"
         << "headers are attached (mxlane job " << r.job_token << ").\n\n"
         << "<" << address << ">: " << failure_text(rc) << "\n";

    // RFC 3464 2.2 (per message) and 2.3 (per recipient). An address with
    // non-ASCII characters is a utf-8 address type (RFC 6533 3).
    std::string addr_type = smtp::has_eight_bit(address) ? "utf-8" : "rfc822";
    std::string status;
    status += "Reporting-MTA: dns; " + r.hostname + "\n";
    status += "X-Mxlane-Queue-ID: " + r.job_token + "\n";
    status += "X-Mxlane-Sender: rfc822; " + one_line(r.sender) + "\n";
    if (r.arrival > 0) status += "Arrival-Date: " + rfc5322_date(r.arrival) + "\n";
    status += "\n";
    status += "Final-Recipient: " + addr_type + "; " + address + "\n";
    status += "Action: failed\n";
    status += "Status: " + status_of(rc) + "\n";
    if (!rc.host.empty()) {
        status += "Remote-MTA: dns; " + remote_mta(rc.host) + "\n";
        if (!rc.reply_text.empty()) status += "Diagnostic-Code: smtp; " + one_line(rc.reply_text) + "\n";
    } else if (!rc.reply_text.empty()) {
        status += "Diagnostic-Code: X-mxlane; " + one_line(rc.reply_text) + "\n";
    }
    if (rc.last_attempt > 0) status += "Last-Attempt-Date: " + rfc5322_date(rc.last_attempt) + "\n";

    std::string headers = r.original_headers;
    if (headers.empty() || headers.back() != '\n') headers += "\n";

    std::string b = boundary_for(r.job_token, now, "dsn");
    std::string body_text = text.str();
    bool eight = smtp::has_eight_bit(status) || smtp::has_eight_bit(headers);
    std::string out = common_headers(r.hostname, r.sender, "Undelivered Mail Returned to Sender",
                                     r.job_token + ".dsn." + std::to_string(rc.seq), now);
    out += "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"" + b + "\"\n\n";
    out += "This is a MIME-encapsulated message.\n\n";
    out += "--" + b + "\n";
    out += "Content-Description: Notification\n";
    out += "Content-Type: text/plain; charset=utf-8\n";
    out += "Content-Transfer-Encoding: " + encoding_for(body_text) + "\n\n";
    out += body_text + "\n";
    out += "--" + b + "\n";
    out += "Content-Description: Delivery report\n";
    out += "Content-Type: message/delivery-status\n";
    if (eight) out += "Content-Transfer-Encoding: 8bit\n";
    out += "\n" + status + "\n";
    out += "--" + b + "\n";
    out += "Content-Description: Undelivered Message Headers\n";
    out += "Content-Type: text/rfc822-headers\n";
    if (eight) out += "Content-Transfer-Encoding: 8bit\n";
    out += "\n" + headers + "\n";
    out += "--" + b + "--\n";
    return out;
}

// ---------------------------------------------------------------- storing them

void Notifier::failed(std::uint64_t job_id, std::uint64_t seq) {
    std::lock_guard lock(mu_);
    noted_.emplace_back(job_id, seq);
}

void Notifier::after_commit(const Settings& s, const std::vector<std::uint64_t>& finished, std::int64_t due) {
    {
        std::lock_guard lock(mu_);
        for (const auto& k : noted_) waiting_.try_emplace(k, 0);
        noted_.clear();
    }
    // A noted recipient whose result is still uncommitted waits for a later
    // commit; after many it is left to the sweep at the end of its job.
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        bool done = true;
        try {
            auto r = store_.recipient(it->first.first, it->first.second);
            if (r && store::is_pending(r->state) && ++it->second < 1000) done = false;
            else if (r && (r->state == RcptState::bounced || r->state == RcptState::expired) &&
                     s.notify == NotifyMode::each)
                report_failure(s, *r, due);
        } catch (const std::exception& e) {
            log::error(store::format_job_id(it->first.first) + ": cannot store a delivery status notification: " +
                       e.what());
        }
        it = done ? waiting_.erase(it) : std::next(it);
    }
    for (auto id : finished) {
        try {
            finish_job(s, id, due);
        } catch (const std::exception& e) {
            // The job stays unmarked: the next start's sweep tries again.
            log::error(store::format_job_id(id) + ": cannot store the sender notification: " + e.what());
        }
    }
    if (messages_.size() > 256) messages_.clear();
}

void Notifier::sweep(const Settings& s, std::int64_t due) {
    for (const auto& job : store_.jobs())
        if (job.state == store::JobState::done && !job.notified) {
            try {
                finish_job(s, job.id, due);
            } catch (const std::exception& e) {
                log::error(store::format_job_id(job.id) + ": cannot store the sender notification: " + e.what());
            }
        }
}

void Notifier::finish_job(const Settings& s, std::uint64_t job_id, std::int64_t due) {
    auto job = store_.job(job_id);
    if (!job || job->state != store::JobState::done || job->notified) return;
    // Never a report about a report, nor to the null sender.
    bool reportable = !job->sender.empty() && !job->name.starts_with(kNotifyJobPrefix);
    auto count = [&](RcptState st) { return job->counts[static_cast<std::size_t>(st)]; };
    bool failures = count(RcptState::bounced) + count(RcptState::expired) > 0;
    if (reportable && (s.notify == NotifyMode::summary || (s.notify == NotifyMode::failures && failures)))
        summarise(s, *job, due);
    if (reportable && s.notify == NotifyMode::each) {
        std::set<std::string> have = stored_keys(job_id);
        for (auto state : {RcptState::bounced, RcptState::expired})
            store_.each_recipient(job_id, state, [&](const store::Recipient& r) {
                if (!have.contains(std::string(kDsnKey) + std::to_string(r.seq))) report_failure(s, r, due);
                return true;
            });
    }
    // Marked after the report is stored: a crash in between means the sweep
    // finds the job again and the key shows the report is already there.
    store_.set_notified(job_id);
}

void Notifier::summarise(const Settings& s, const store::Job& job, std::int64_t due) {
    std::string key = std::string(kSummaryKey) + std::to_string(job.total());
    if (stored_keys(job.id).contains(key)) return;
    JobReport rep;
    rep.hostname = s.myhostname;
    rep.job_token = store::format_job_id(job.id);
    rep.job_name = job.name;
    rep.sender = job.sender;
    rep.created = job.created;
    rep.finished = store::now_ms();
    rep.counts = job.counts;
    rep.suppressions = store_.suppressions_of(job.id);
    store_.each_recipient(job.id, std::nullopt, [&](const store::Recipient& r) {
        if (!failed_state(r.state)) return true;
        if (rep.failed.size() >= kMaxListed) {
            rep.truncated = true;
            return false;
        }
        rep.failed.push_back(r);
        return true;
    });
    store_notification(job.id, key, job.sender, render_summary(rep, store::now_ms()), due);
    log::info(rep.job_token + ": sender notification: summary to <" + job.sender + ">");
}

bool Notifier::report_failure(const Settings& s, const store::Recipient& r, std::int64_t due) {
    const MessageFacts& m = message_facts(r.job_id, r.message_id);
    if (!m.reportable) return false;
    FailureReport rep;
    rep.hostname = s.myhostname;
    rep.job_token = store::format_job_id(r.job_id);
    rep.sender = m.sender;
    rep.arrival = m.created;
    rep.original_headers =
        m.personalised ? mime::render_message(mime::RenderPlan(m.headers), m.field_names, r.fields, r.address, false)
                       : m.headers;
    rep.rcpt = r;
    store_notification(r.job_id, std::string(kDsnKey) + std::to_string(r.seq), m.sender,
                       render_dsn(rep, store::now_ms()), due);
    log::info(rep.job_token + ": sender non-delivery notification for <" + r.address + "> to <" + m.sender + ">");
    return true;
}

std::set<std::string> Notifier::stored_keys(std::uint64_t job_id) {
    std::set<std::string> keys;
    auto id = store_.job_by_name(std::string(kNotifyJobPrefix) + store::format_job_id(job_id));
    if (!id) return keys;
    for (const auto& m : store_.messages(*id))
        if (is_notification(m)) keys.insert(m.host_queue_id);
    return keys;
}

void Notifier::store_notification(std::uint64_t job_id, const std::string& key, const std::string& to,
                                  const std::string& text, std::int64_t due) {
    store::Intake in;
    in.job_name = std::string(kNotifyJobPrefix) + store::format_job_id(job_id);
    in.sender = "";
    in.host_queue_id = key;
    in.eight_bit = smtp::has_eight_bit(text);
    in.smtputf8 = smtp::has_eight_bit(to);
    in.recipients.push_back({to, {}});
    std::istringstream body(text);
    store_.add_message(in, body, due);
}

const Notifier::MessageFacts& Notifier::message_facts(std::uint64_t job_id, std::uint64_t msg_id) {
    auto [it, fresh] = messages_.try_emplace(msg_id);
    if (!fresh) return it->second;
    MessageFacts& f = it->second;
    auto m = store_.message(job_id, msg_id);
    if (!m || m->sender.empty() || is_notification(*m)) return f;
    f.reportable = true;
    f.sender = m->sender;
    f.created = m->created;
    f.personalised = m->personalised;
    f.field_names = m->field_names;
    // The header section: up to the first empty line.
    store_.read_text(*m, [&](std::string_view chunk) {
        if (f.headers.size() < kMaxHeaders) f.headers.append(chunk);
    });
    if (std::size_t size = header_section_size(f.headers); size != std::string::npos) f.headers.resize(size);
    else if (f.headers.size() >= kMaxHeaders) f.headers.resize(kMaxHeaders);
    return f;
}

}  // namespace mxlane::qrunner
