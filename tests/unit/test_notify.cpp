// test_notify: the summary and RFC 3464 texts, and how notifications are stored (once, never about themselves).
#include <cppunit/extensions/HelperMacros.h>

#include <sstream>

#include "libshared/store/queue_store.hpp"
#include "qrunner/notify.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using namespace mxlane::qrunner;
using store::RcptState;
using test::TempDir;

namespace {

constexpr std::int64_t kNow = 1701201246000;  // Tue, 28 Nov 2023 19:54:06 UTC

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

store::Recipient failed_rcpt(const std::string& address, RcptState state, const std::string& dsn,
                             const std::string& reply, const std::string& host) {
    store::Recipient r;
    r.job_id = 0x2a;
    r.seq = 7;
    r.address = address;
    r.state = state;
    r.dsn = dsn;
    r.reply_text = reply;
    r.reply_code = reply.empty() ? 0 : std::stoi(reply.substr(0, 3));
    r.host = host;
    r.attempts = 2;
    r.last_attempt = kNow - 1000;
    return r;
}

Settings settings(NotifyMode mode) {
    Settings s;
    s.notify = mode;
    s.myhostname = "mta.mxlane.test";
    return s;
}

std::uint64_t add_job(store::QueueStore& q, const std::string& sender, std::initializer_list<const char*> rcpts,
                      const std::string& text = "From: news@sender.test\nSubject: news\n\nhello\n") {
    store::Intake in;
    in.sender = sender;
    for (const char* r : rcpts) in.recipients.push_back({r, {}});
    std::istringstream body(text);
    return q.add_message(in, body, kNow).job_id;
}

// Claims every recipient of the store and gives each the state its local part names.
std::vector<std::uint64_t> finish_all(store::QueueStore& q, Notifier* noted) {
    auto c = q.claim_due(kNow + 1, 1000, kNow + 1, 0);
    std::vector<store::Outcome> out;
    for (const auto& r : c.due) {
        store::Outcome o;
        o.job_id = r.job_id;
        o.seq = r.seq;
        bool bad = r.address.starts_with("hard");
        o.state = bad ? RcptState::bounced : RcptState::delivered;
        o.reply_code = bad ? 550 : 250;
        o.dsn = bad ? "5.1.1" : "2.0.0";
        o.reply_text = bad ? "550 5.1.1 user unknown" : "250 2.0.0 ok";
        o.host = "mx.ok.test[127.0.0.61]:25";
        o.attempt_time = kNow + 2;
        if (bad && noted) noted->failed(r.job_id, r.seq);
        out.push_back(o);
    }
    return q.write_results(out);
}

std::vector<store::Message> notifications_for(store::QueueStore& q, std::uint64_t job_id) {
    auto id = q.job_by_name(std::string(kNotifyJobPrefix) + store::format_job_id(job_id));
    return id ? q.messages(*id) : std::vector<store::Message>{};
}

}  // namespace

class NotifyTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(NotifyTest);
    CPPUNIT_TEST(summary_text);
    CPPUNIT_TEST(dsn_text);
    CPPUNIT_TEST(dsn_without_remote_host);
    CPPUNIT_TEST(summary_stored_once);
    CPPUNIT_TEST(each_failure_stored_once);
    CPPUNIT_TEST(dsn_headers_rendered_for_the_recipient);
    CPPUNIT_TEST(never_about_null_sender_or_notifications);
    CPPUNIT_TEST(none_marks_without_sending);
    CPPUNIT_TEST(summary_csv_formulas);
    CPPUNIT_TEST_SUITE_END();

public:
    void summary_text() {
        JobReport r;
        r.hostname = "mta.mxlane.test";
        r.job_token = "J00002A";
        r.job_name = "november";
        r.sender = "news@sender.test";
        r.created = kNow - 60000;
        r.finished = kNow;
        r.counts[static_cast<int>(RcptState::delivered)] = 8;
        r.counts[static_cast<int>(RcptState::bounced)] = 1;
        r.counts[static_cast<int>(RcptState::expired)] = 1;
        r.failed.push_back(failed_rcpt("bob@x.test", RcptState::bounced, "5.1.1", "550 5.1.1 no such user, sorry",
                                       "mx.x.test[192.0.2.7]:25"));
        r.failed.push_back(failed_rcpt("cy@y.test", RcptState::expired, "4.4.1", "", ""));
        std::string t = render_summary(r, kNow);
        CPPUNIT_ASSERT(t.starts_with("From: Mail Delivery System <MAILER-DAEMON@mta.mxlane.test>\n"));
        CPPUNIT_ASSERT(has(t, "\nTo: <news@sender.test>\n"));
        CPPUNIT_ASSERT(has(t, "\nSubject: Delivery report for job J00002A (november): 8 of 10 delivered\n"));
        CPPUNIT_ASSERT(has(t, "\nDate: Tue, 28 Nov 2023 19:54:06 +0000\n"));
        CPPUNIT_ASSERT(has(t, "\nAuto-Submitted: auto-replied\n"));
        CPPUNIT_ASSERT(has(t, "Content-Type: multipart/mixed; boundary="));
        CPPUNIT_ASSERT(has(t, "  delivered:  8\n"));
        CPPUNIT_ASSERT(
            has(t, "<bob@x.test>: bounced (invalid-recipient): host mx.x.test[192.0.2.7]:25 said: 550 5.1.1 no such user"));
        CPPUNIT_ASSERT(has(t, "Content-Disposition: attachment; filename=\"J00002A-failed.csv\""));
        // The CSV: a header row, the reply quoted for its comma, CRLF record ends.
        CPPUNIT_ASSERT(has(t, "address,state,dsn,reply,host,attempts,last_attempt,class\r\n"));
        CPPUNIT_ASSERT(has(t, "bob@x.test,bounced,5.1.1,\"550 5.1.1 no such user, sorry\",mx.x.test[192.0.2.7]:25,2,"
                              "2023-11-28T19:54:05Z,invalid-recipient\r\n"));
        CPPUNIT_ASSERT(has(t, "cy@y.test,expired,4.4.1,,,2,"));
        CPPUNIT_ASSERT(has(t, "Content-Transfer-Encoding: 7bit"));
        CPPUNIT_ASSERT(!has(t, "8bit"));
        // Nothing put on the suppression list: no such line.
        CPPUNIT_ASSERT(!has(t, "suppression list"));
        r.suppressions = {{"bounce", 1}, {"complaint", 0}, {"manual", 0}, {"unsubscribed", 2}};
        CPPUNIT_ASSERT(has(render_summary(r, kNow),
                           "  added to the suppression list: 3 (bounce 1, complaint 0, manual 0, unsubscribed 2)\n"));
    }

    // A reply or an address a spreadsheet would run as a formula gets a leading '.
    void summary_csv_formulas() {
        JobReport r;
        r.hostname = "mta.mxlane.test";
        r.job_token = "J00002A";
        r.sender = "news@sender.test";
        r.counts[static_cast<int>(RcptState::bounced)] = 2;
        r.failed.push_back(failed_rcpt("-minus@x.test", RcptState::bounced, "5.1.1", "550 no", "=cmd|' /C calc'!A0"));
        r.failed.push_back(failed_rcpt("+plus@x.test", RcptState::bounced, "5.1.1", "", "@SUM(1+1)"));
        std::string t = render_summary(r, kNow);
        CPPUNIT_ASSERT(has(t, "\r\n'-minus@x.test,bounced,5.1.1,550 no,'=cmd|' /C calc'!A0,2,"));
        CPPUNIT_ASSERT(has(t, "\r\n'+plus@x.test,bounced,5.1.1,,'@SUM(1+1),2,"));
    }

    void dsn_text() {
        FailureReport r;
        r.hostname = "mta.mxlane.test";
        r.job_token = "J00002A";
        r.sender = "news@sender.test";
        r.arrival = kNow - 3600000;
        r.original_headers = "From: news@sender.test\nSubject: November\n";
        r.rcpt = failed_rcpt("bob@x.test", RcptState::bounced, "5.1.1", "550 5.1.1 no such\r\nuser",
                             "mx.x.test[192.0.2.7]:25");
        std::string t = render_dsn(r, kNow);
        CPPUNIT_ASSERT(t.starts_with("From: Mail Delivery System <MAILER-DAEMON@mta.mxlane.test>\n"));
        CPPUNIT_ASSERT(has(t, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="));
        CPPUNIT_ASSERT(has(t, "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mta.mxlane.test\n"));
        CPPUNIT_ASSERT(has(t, "Arrival-Date: Tue, 28 Nov 2023 18:54:06 +0000\n\nFinal-Recipient: rfc822; bob@x.test\n"));
        CPPUNIT_ASSERT(has(t, "\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.x.test\n"));
        // A reply's line break never starts a new field.
        CPPUNIT_ASSERT(has(t, "\nDiagnostic-Code: smtp; 550 5.1.1 no such  user\n"));
        CPPUNIT_ASSERT(has(t, "\nLast-Attempt-Date: Tue, 28 Nov 2023 19:54:05 +0000\n"));
        CPPUNIT_ASSERT(has(t, "Content-Type: text/rfc822-headers\n\nFrom: news@sender.test\nSubject: November\n"));
    }

    void dsn_without_remote_host() {
        FailureReport r;
        r.hostname = "mta.mxlane.test";
        r.job_token = "J00002A";
        r.sender = "news@sender.test";
        r.rcpt = failed_rcpt("cy@y.test", RcptState::expired, "", "", "");
        std::string t = render_dsn(r, kNow);
        CPPUNIT_ASSERT(has(t, "\nStatus: 4.4.7\n"));  // RFC 3463: delivery time expired
        CPPUNIT_ASSERT(!has(t, "Remote-MTA"));
        CPPUNIT_ASSERT(!has(t, "Diagnostic-Code"));
        CPPUNIT_ASSERT(!has(t, "Arrival-Date"));
        r.rcpt = failed_rcpt("q@nx.test", RcptState::bounced, "5.1.2", "550 5.1.2 domain not found", "");
        t = render_dsn(r, kNow);
        CPPUNIT_ASSERT(has(t, "\nStatus: 5.1.2\nDiagnostic-Code: X-mxlane; 550 5.1.2 domain not found\n"));
    }

    void summary_stored_once() {
        TempDir dir;
        store::QueueStore q(dir.path());
        auto job = add_job(q, "news@sender.test", {"a@ok.test", "hard1@ok.test"});
        auto finished = finish_all(q, nullptr);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), finished.size());
        Notifier n(q);
        auto s = settings(NotifyMode::summary);
        n.after_commit(s, finished, kNow + 5);
        auto msgs = notifications_for(q, job);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), msgs.size());
        CPPUNIT_ASSERT(is_notification(msgs[0]));
        CPPUNIT_ASSERT_EQUAL(std::string(""), msgs[0].sender);
        CPPUNIT_ASSERT_EQUAL(std::string("mxlane-notify:summary:2"), msgs[0].host_queue_id);
        CPPUNIT_ASSERT(q.job(job)->notified);
        std::vector<std::string> to;
        q.each_recipient(msgs[0].job_id, std::nullopt, [&](const store::Recipient& r) {
            to.push_back(r.address);
            CPPUNIT_ASSERT_EQUAL(kNow + 5, r.next_attempt);  // due when asked
            return true;
        });
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), to.size());
        CPPUNIT_ASSERT_EQUAL(std::string("news@sender.test"), to[0]);
        std::string text = q.text(msgs[0]);
        CPPUNIT_ASSERT(has(text, "hard1@ok.test,bounced,5.1.1,550 5.1.1 user unknown,"));

        // The process died after storing the summary, before marking the job:
        // the sweep at the next start marks it without a second summary.
        auto j = q.job(job);
        j->notified = false;
        q.env().transact([&](DbTxn* txn) { q.env().put(q.env().jobs(), txn, store::job_key(job), j->encode()); });
        n.sweep(s, kNow + 6);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), notifications_for(q, job).size());
        CPPUNIT_ASSERT(q.job(job)->notified);
    }

    void each_failure_stored_once() {
        TempDir dir;
        store::QueueStore q(dir.path());
        auto job = add_job(q, "news@sender.test", {"a@ok.test", "hard1@ok.test", "hard2@ok.test"});
        Notifier n(q);
        auto s = settings(NotifyMode::each);
        // Noted before the commit: nothing to report until the result is written.
        auto c = q.claim_due(kNow + 1, 1000, kNow + 1, 0);
        n.failed(job, c.due[1].seq);
        n.after_commit(s, {}, kNow + 5);
        CPPUNIT_ASSERT(notifications_for(q, job).empty());
        q.recover_inflight(kNow);
        auto finished = finish_all(q, &n);
        n.after_commit(s, finished, kNow + 5);
        auto msgs = notifications_for(q, job);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), msgs.size());
        for (const auto& m : msgs) {
            CPPUNIT_ASSERT(m.host_queue_id.starts_with("mxlane-notify:dsn:"));
            std::string text = q.text(m);
            CPPUNIT_ASSERT(has(text, "report-type=delivery-status"));
            CPPUNIT_ASSERT(has(text, "Subject: news\n"));
        }
        CPPUNIT_ASSERT(q.job(job)->notified);
    }

    void dsn_headers_rendered_for_the_recipient() {
        // A personalised job: the DSN quotes the headers the recipient was sent, in RFC 2047 form.
        TempDir dir;
        store::QueueStore q(dir.path());
        store::Intake in;
        in.sender = "news@sender.test";
        in.personalised = true;
        in.field_names = {"name"};
        in.recipients.push_back({"hard1@ok.test", {"José"}});
        std::istringstream body("From: news@sender.test\nTo: {{name}} <{{address}}>\nSubject: Hallo {{name}}\n\nhi\n");
        auto job = q.add_message(in, body, kNow).job_id;
        Notifier n(q);
        n.after_commit(settings(NotifyMode::each), finish_all(q, &n), kNow + 5);
        auto msgs = notifications_for(q, job);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), msgs.size());
        std::string text = q.text(msgs[0]);
        CPPUNIT_ASSERT(has(text, "To: =?UTF-8?Q?Jos=C3=A9?= <hard1@ok.test>\r\n"));
        CPPUNIT_ASSERT(has(text, "Subject: =?UTF-8?Q?Hallo_Jos=C3=A9?=\r\n"));
        CPPUNIT_ASSERT(!has(text, "{{name}}"));
    }

    void never_about_null_sender_or_notifications() {
        TempDir dir;
        store::QueueStore q(dir.path());
        auto job = add_job(q, "", {"hard1@ok.test"});
        Notifier n(q);
        auto s = settings(NotifyMode::each);
        auto finished = finish_all(q, &n);
        n.after_commit(s, finished, kNow + 5);
        CPPUNIT_ASSERT(notifications_for(q, job).empty());
        CPPUNIT_ASSERT(q.job(job)->notified);

        // A notification that bounces is reported on by nobody.
        auto orig = add_job(q, "news@sender.test", {"hard1@ok.test"});
        s.notify = NotifyMode::summary;
        n.after_commit(s, finish_all(q, nullptr), kNow + 5);
        auto msgs = notifications_for(q, orig);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), msgs.size());
        store::Outcome o;
        q.each_recipient(msgs[0].job_id, std::nullopt, [&](const store::Recipient& r) {
            o.job_id = r.job_id;
            o.seq = r.seq;
            return true;
        });
        q.claim_due(kNow + 10, 1000, kNow + 10, 0);
        o.state = RcptState::bounced;
        o.dsn = "5.1.1";
        auto done = q.write_results(std::vector<store::Outcome>{o});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), done.size());
        n.after_commit(s, done, kNow + 11);
        CPPUNIT_ASSERT(notifications_for(q, msgs[0].job_id).empty());
    }

    void none_marks_without_sending() {
        TempDir dir;
        store::QueueStore q(dir.path());
        auto job = add_job(q, "news@sender.test", {"hard1@ok.test"});
        Notifier n(q);
        n.after_commit(settings(NotifyMode::none), finish_all(q, &n), kNow + 5);
        CPPUNIT_ASSERT(notifications_for(q, job).empty());
        // Marked: turning summaries on later does not report on old jobs.
        CPPUNIT_ASSERT(q.job(job)->notified);
        n.sweep(settings(NotifyMode::summary), kNow + 6);
        CPPUNIT_ASSERT(notifications_for(q, job).empty());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(NotifyTest);
