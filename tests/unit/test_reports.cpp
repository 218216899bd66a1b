// test_reports: the milter's report recognition: addresses, tokens in reported messages, the complaint rate, and reports recorded in a real store.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/recipient_token.hpp"
#include "milter/reports.hpp"
#include "tests/unit/report_samples.hpp"
#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;
using namespace mxlane;
using mxlane::milter::ReportKind;
using mxlane::milter::ReportMail;
using mxlane::milter::ReportSettings;

class ReportsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ReportsTest);
    CPPUNIT_TEST(recipients_recognised);
    CPPUNIT_TEST(tokens_in_reported_messages);
    CPPUNIT_TEST(complaint_rate);
    CPPUNIT_TEST(mail_collected_bounded);
    CPPUNIT_TEST(dsn_bounces_after_delivery);
    CPPUNIT_TEST(dsn_that_changes_nothing);
    CPPUNIT_TEST(unsubscribe_mail);
    CPPUNIT_TEST(complaint_and_hold);
    CPPUNIT_TEST_SUITE_END();

    static ReportSettings settings(const std::string& dir = "/nonexistent") {
        ReportSettings s;
        s.queue_directory = dir;
        s.bounce_address = "bounces@shop.test";
        s.unsubscribe_address = "unsubscribe@shop.test";
        s.complaint_address = "fbl@shop.test";
        return s;
    }

    // A message as the milter hands it over: header fields one by one, then the body in CRLF.
    static ReportMail mail(const ReportSettings& s, const std::string& rcpt, const std::string& text) {
        ReportMail m;
        CPPUNIT_ASSERT(m.add_recipient(s, rcpt));
        const auto split = text.find("\n\n");
        std::string head = text.substr(0, split), body = text.substr(split + 2);
        std::size_t at = 0;
        while (at < head.size()) {
            auto end = head.find('\n', at);
            if (end == std::string::npos) end = head.size();
            std::string line = head.substr(at, end - at);
            auto colon = line.find(':');
            m.add_header(line.substr(0, colon), line.substr(colon + 2), false);
            at = end + 1;
        }
        m.end_of_headers();
        CPPUNIT_ASSERT(m.add_body(mxlane::test::with_crlf(body)));
        return m;
    }

    static std::string dsn(const std::string& final_rcpt, const std::string& action, const std::string& status,
                           const std::string& diag) {
        return "From: MAILER-DAEMON@mx.example.test\n"
               "To: bounces@shop.test\n"
               "Subject: Undelivered Mail Returned to Sender\n"
               "MIME-Version: 1.0\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n"
               "\n"
               "--b1\n"
               "Content-Type: text/plain\n"
               "\n"
               "Your message could not be delivered.\n"
               "\n"
               "--b1\n"
               "Content-Type: message/delivery-status\n"
               "\n"
               "Reporting-MTA: dns; mx.example.test\n"
               "\n"
               "Final-Recipient: rfc822; " + final_rcpt + "\n"
               "Action: " + action + "\n"
               "Status: " + status + "\n"
               "Diagnostic-Code: smtp; " + diag + "\n"
               "\n"
               "--b1--\n";
    }

    static std::string arf(const std::string& reported_headers) {
        return "From: fbl@isp.test\n"
               "To: fbl@shop.test\n"
               "Subject: complaint\n"
               "MIME-Version: 1.0\n"
               "Content-Type: multipart/report; report-type=feedback-report; boundary=\"f1\"\n"
               "\n"
               "--f1\n"
               "Content-Type: text/plain\n"
               "\n"
               "A complaint about a message from your network.\n"
               "\n"
               "--f1\n"
               "Content-Type: message/feedback-report\n"
               "\n"
               "Feedback-Type: abuse\n"
               "User-Agent: isp-fbl/1.0\n"
               "Version: 1\n"
               "\n"
               "--f1\n"
               "Content-Type: text/rfc822-headers\n"
               "\n" + reported_headers + "\n"
               "--f1--\n";
    }

    struct World {
        TempDir dir;
        std::unique_ptr<QueueStore> q;
        std::vector<Recipient> rs;
        ReportSettings s;
        World(std::initializer_list<const char*> rcpts) {
            dir.write("loop.key", std::string(32, 'k'));
            q = std::make_unique<QueueStore>(dir.path());
            add(*q, intake("", rcpts), 1000);
            auto c = q->claim_due(1000, 10, 1000, 0);
            std::vector<Outcome> outs;
            // "later..." stays deferred: its job is not done yet.
            for (const auto& r : c.due)
                outs.push_back(outcome(r, r.address.starts_with("later") ? RcptState::deferred : RcptState::delivered,
                                       r.address.starts_with("later") ? 900000 : 0));
            q->write_results(outs);
            rs = c.due;
            s = settings(dir.path());
        }
        std::string token(std::size_t i) { return recipient_token_make(dir.path(), {rs[i].job_id, rs[i].seq}); }
        Recipient now(std::size_t i) { return *q->recipient(rs[i].job_id, rs[i].seq); }
    };

public:
    void recipients_recognised() {
        auto s = settings();
        auto b = milter::report_recipient(s, "<Bounces+abc234@SHOP.test>");
        CPPUNIT_ASSERT(b.kind == ReportKind::bounce);
        CPPUNIT_ASSERT_EQUAL(std::string("abc234"), b.token);
        CPPUNIT_ASSERT(milter::report_recipient(s, "unsubscribe+xyz@shop.test").kind == ReportKind::unsubscribe);
        CPPUNIT_ASSERT(milter::report_recipient(s, "FBL@shop.test").kind == ReportKind::complaint);
        CPPUNIT_ASSERT(milter::report_recipient(s, "bounces@shop.test").kind == ReportKind::none);  // no token
        CPPUNIT_ASSERT(milter::report_recipient(s, "bounces+abc@other.test").kind == ReportKind::none);
        CPPUNIT_ASSERT(milter::report_recipient(s, "ann@shop.test").kind == ReportKind::none);
        s.complaint_address.clear();
        CPPUNIT_ASSERT(milter::report_recipient(s, "fbl@shop.test").kind == ReportKind::none);
        // A message with one ordinary recipient among report addresses is no report.
        ReportMail m;
        CPPUNIT_ASSERT(m.add_recipient(s, "bounces+abc@shop.test"));
        CPPUNIT_ASSERT(!m.add_recipient(s, "ann@shop.test"));
    }

    void tokens_in_reported_messages() {
        auto s = settings();
        CPPUNIT_ASSERT_EQUAL(std::string("tok1"),
                             milter::reported_token(s, "Return-Path: <bounces+tok1@shop.test>\nFrom: a@shop.test\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("tok2"),
                             milter::reported_token(s, "Return-Path: <redacted@isp.test>\nList-Unsubscribe: "
                                                       "<mailto:unsubscribe+tok2@shop.test?subject=unsubscribe>\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("tok3"),
                             milter::reported_token(s, "List-Unsubscribe: <https://news.shop.test/u/tok3>\n"));
        CPPUNIT_ASSERT_EQUAL(std::string(), milter::reported_token(s, "From: a@shop.test\nSubject: x\n"));
    }

    void complaint_rate() {
        auto s = settings();
        s.max_complaint_rate = 0.3;
        s.complaint_min_delivered = 1000;
        CPPUNIT_ASSERT(!milter::complaint_rate_exceeded(s, 3, 1000));   // 0.3% is not over 0.3%
        CPPUNIT_ASSERT(milter::complaint_rate_exceeded(s, 4, 1000));
        CPPUNIT_ASSERT(!milter::complaint_rate_exceeded(s, 500, 999));  // too few delivered yet
        s.complaint_min_delivered = 1;
        CPPUNIT_ASSERT(!milter::complaint_rate_exceeded(s, 1, 0));
    }

    void mail_collected_bounded() {
        auto s = settings();
        ReportMail m;
        m.add_recipient(s, "fbl@shop.test");
        m.add_header("Subject", "x", false);
        m.end_of_headers();
        CPPUNIT_ASSERT(m.add_body("a\r\nb\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: x\n\na\nb\n"), m.text());
        CPPUNIT_ASSERT(!m.add_body(std::string(ReportMail::kMaxReportSize, 'x')));
    }

    void dsn_bounces_after_delivery() {
        World w({"ann@x.test", "bob@x.test"});
        auto m = mail(w.s, "bounces+" + w.token(0) + "@shop.test",
                      dsn("ann@x.test", "failed", "5.1.1", "550 5.1.1 <ann@x.test>: Recipient address rejected"));
        auto o = milter::handle_report(*w.q, w.s, m, 8000);
        CPPUNIT_ASSERT(o.recorded);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), o.log.size());
        CPPUNIT_ASSERT(o.log[0].find("bounced after delivery, suppressed (bounce)") != std::string::npos);
        auto ann = w.now(0);
        CPPUNIT_ASSERT(ann.state == RcptState::bounced);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), ann.dsn);
        CPPUNIT_ASSERT(w.now(1).state == RcptState::delivered);
        auto all = w.q->suppressions();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("bounce"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(w.rs[0].job_id, all[0].job);
        // A full mailbox bounces without suppressing.
        auto full = mail(w.s, "bounces+" + w.token(1) + "@shop.test",
                         dsn("bob@x.test", "failed", "5.2.2", "552 5.2.2 mailbox full"));
        CPPUNIT_ASSERT(milter::handle_report(*w.q, w.s, full, 8000).recorded);
        CPPUNIT_ASSERT(w.now(1).state == RcptState::bounced);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), w.q->suppressions().size());
    }

    void dsn_that_changes_nothing() {
        World w({"ann@x.test", "bob@x.test"});
        // Delayed: read, nothing to record.
        auto delayed = mail(w.s, "bounces+" + w.token(0) + "@shop.test",
                            dsn("ann@x.test", "delayed", "4.4.1", "connection timed out"));
        CPPUNIT_ASSERT(milter::handle_report(*w.q, w.s, delayed, 8000).recorded);
        CPPUNIT_ASSERT(w.now(0).state == RcptState::delivered);
        // A DSN about bob sent to ann's token: not about ann, left alone.
        auto other = mail(w.s, "bounces+" + w.token(0) + "@shop.test",
                          dsn("bob@x.test", "failed", "5.1.1", "550 5.1.1 no such user"));
        auto o = milter::handle_report(*w.q, w.s, other, 8000);
        CPPUNIT_ASSERT(!o.recorded);
        CPPUNIT_ASSERT(o.log.at(0).find("names only other recipients") != std::string::npos);
        CPPUNIT_ASSERT(w.now(0).state == RcptState::delivered);
        CPPUNIT_ASSERT(w.now(1).state == RcptState::delivered);
        // A forged token (one character changed) and a message that is no DSN.
        std::string forged = w.token(0);
        forged[3] = forged[3] == 'a' ? 'b' : 'a';
        auto f = mail(w.s, "bounces+" + forged + "@shop.test", dsn("ann@x.test", "failed", "5.1.1", "550 5.1.1 no"));
        o = milter::handle_report(*w.q, w.s, f, 8000);
        CPPUNIT_ASSERT(!o.recorded);
        CPPUNIT_ASSERT(o.log.at(0).find("does not verify") != std::string::npos);
        auto plain = mail(w.s, "bounces+" + w.token(0) + "@shop.test", "Subject: hello\n\njust a note\n");
        CPPUNIT_ASSERT(!milter::handle_report(*w.q, w.s, plain, 8000).recorded);
        CPPUNIT_ASSERT(w.now(0).state == RcptState::delivered);
        CPPUNIT_ASSERT(w.q->suppressions().empty());
    }

    void unsubscribe_mail() {
        World w({"ann@x.test"});
        auto m = mail(w.s, "unsubscribe+" + w.token(0) + "@shop.test", "Subject: unsubscribe\n\n\n");
        auto o = milter::handle_report(*w.q, w.s, m, 8000);
        CPPUNIT_ASSERT(o.recorded);
        auto all = w.q->suppressions();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("ann@x.test"), all[0].address);
        CPPUNIT_ASSERT_EQUAL(std::string("unsubscribed"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(w.rs[0].job_id, all[0].job);
    }

    void complaint_and_hold() {
        World w({"ann@x.test", "bob@x.test", "later@x.test"});
        w.s.complaint_min_delivered = 2;
        w.s.max_complaint_rate = 60;
        // The ISP redacted the recipient; the VERP Return-Path names it.
        auto first = mail(w.s, "fbl@shop.test",
                          arf("Return-Path: <bounces+" + w.token(0) + "@shop.test>\nFrom: news@shop.test\n"
                              "To: redacted@isp.test\nSubject: offers\n"));
        auto o = milter::handle_report(*w.q, w.s, first, 8000);
        CPPUNIT_ASSERT(o.recorded);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), w.q->complaints(w.rs[0].job_id));
        CPPUNIT_ASSERT(w.q->job(w.rs[0].job_id)->state == JobState::active);  // 1 of 2: 50% is under 60%
        auto all = w.q->suppressions();
        CPPUNIT_ASSERT_EQUAL(std::string("complaint"), all.at(0).reason);
        CPPUNIT_ASSERT_EQUAL(std::string("ann@x.test"), all.at(0).address);
        // The second, found through List-Unsubscribe: 2 of 2 is over.
        auto second = mail(w.s, "fbl@shop.test",
                           arf("From: news@shop.test\nList-Unsubscribe: <mailto:unsubscribe+" + w.token(1) +
                               "@shop.test>\nSubject: offers\n"));
        o = milter::handle_report(*w.q, w.s, second, 8100);
        CPPUNIT_ASSERT(o.recorded);
        auto job = w.q->job(w.rs[0].job_id);
        CPPUNIT_ASSERT(job->state == JobState::held);
        CPPUNIT_ASSERT_EQUAL(std::string("complaint rate 100.00% over max_complaint_rate 60.00% (2 complaints, 2 delivered)"),
                             job->hold_reason);
        CPPUNIT_ASSERT(w.now(2).state == RcptState::held);
        // No token of ours in the reported message: left to the MTA.
        auto foreign = mail(w.s, "fbl@shop.test", arf("From: someone@else.test\nSubject: x\n"));
        CPPUNIT_ASSERT(!milter::handle_report(*w.q, w.s, foreign, 8200).recorded);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), w.q->complaints(w.rs[0].job_id));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ReportsTest);
