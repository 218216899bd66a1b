// test_arf_report: feedback-loop reports from the corpus (tests/unit/reports/), header_field, and hostile input sizes and depths.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <string>

#include "libshared/delivery_report.hpp"
#include "libshared/mime_parts.hpp"
#include "libshared/report_text.hpp"
#include "tests/unit/report_samples.hpp"

using namespace mxlane;

namespace {

struct WantArf {
    std::string type, agent, version, rcpt_to, mail_from, domain, ip, arrival;
};

// Every field, for the sample with LF and with CRLF line ends; the reported
// message's header section is returned for the caller's own checks.
std::string expect_arf(const std::string& file, const WantArf& w) {
    std::string headers;
    for (const std::string& text : test::both_line_ends(file)) {
        std::string at = file + (text.find('\r') != std::string::npos ? " (CRLF)" : " (LF)");
        auto r = parse_arf(text);
        CPPUNIT_ASSERT_MESSAGE(at + ": not read", r.has_value());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.type, r->feedback_type);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.agent, r->user_agent);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.version, r->version);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.rcpt_to, r->original_rcpt_to);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.mail_from, r->original_mail_from);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.domain, r->reported_domain);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.ip, r->source_ip);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, w.arrival, r->arrival_date);
        CPPUNIT_ASSERT_MESSAGE(at + ": read as a bounce", !parse_dsn(text));
        headers = r->original_headers;
    }
    return headers;  // the CRLF one
}

std::string str(const char* s) { return s; }

// A parse of 4 MB that is linear takes well under a second; a quadratic one would
// take hours, so the bound only has to sit between the two. Instrumented and
// unoptimised (the sanitizer build is -O0), a linear parse is ten times slower
// again, and on CI's two busy cores it has taken 5 s.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kLinearSeconds = 30.0;
#else
constexpr double kLinearSeconds = 3.0;
#endif

double seconds_for(const std::string& text) {
    auto t0 = std::chrono::steady_clock::now();
    (void)parse_dsn(text);
    (void)parse_arf(text);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

class ArfReportTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ArfReportTest);
    CPPUNIT_TEST(yahoo_like_abuse);
    CPPUNIT_TEST(aol_like_redacted);
    CPPUNIT_TEST(jmrp_like_plain_fields);
    CPPUNIT_TEST(rfc822_headers_part);
    CPPUNIT_TEST(other_types_and_encodings);
    CPPUNIT_TEST(not_complaints);
    CPPUNIT_TEST(header_field_of_section);
    CPPUNIT_TEST(codes_and_addresses_in_text);
    CPPUNIT_TEST(depth_is_bounded);
    CPPUNIT_TEST(hostile_sizes_stay_linear);
    CPPUNIT_TEST_SUITE_END();

public:
    void yahoo_like_abuse() {
        std::string h = expect_arf("arf_yahoo.eml", {"abuse", "Yahoo!-Mail-Feedback/2.0", "0.1", "reader@yahoo.test",
                                                     "bounces+J00002A.r7.k3x9@shop.test", "shop.test", "",
                                                     "Mon, 1 Dec 2026 10:00:01 +0000"});
        // What the wiring looks for to find the recipient when the address is redacted.
        CPPUNIT_ASSERT_EQUAL(str("<bounces+J00002A.r7.k3x9@shop.test>"), header_field(h, "Return-Path"));
        CPPUNIT_ASSERT_EQUAL(str("J00002A"), header_field(h, "x-mxlane-job"));
        CPPUNIT_ASSERT_EQUAL(str("<mailto:unsubscribe+k3x9@shop.test>,\t<https://news.shop.test/u/k3x9>"),
                             header_field(h, "List-Unsubscribe"));
        CPPUNIT_ASSERT(header_field(h, "Subject") == "December offers");
        CPPUNIT_ASSERT(h.find("The offers.") == std::string::npos);  // the header section only
    }

    void aol_like_redacted() {
        std::string h = expect_arf("arf_aol.eml", {"abuse", "AOL SComp", "0.1", "redacted@aol.test", "", "shop.test",
                                                   "192.0.2.10", "Mon, 01 Dec 2026 10:20:00 -0500 (EST)"});
        CPPUNIT_ASSERT_EQUAL(str("<bounces+J0000RR.r2.a2a2@shop.test>"), header_field(h, "Return-Path"));
        CPPUNIT_ASSERT_EQUAL(str("J0000RR"), header_field(h, "X-Mxlane-Job"));
    }

    // The fields in a text/plain second part (some Microsoft JMRP reports).
    void jmrp_like_plain_fields() {
        std::string h = expect_arf("arf_jmrp.eml", {"abuse", "Hotmail FBL", "0.1", "", "", "", "192.0.2.10",
                                                    "Mon, 1 Dec 2026 10:21:00 -0800"});
        CPPUNIT_ASSERT_EQUAL(str("<outlook.reader@outlook.test>"), header_field(h, "X-HmXmrOriginalRecipient"));
        CPPUNIT_ASSERT_EQUAL(str("bounces+J0000SS.r3.h3h3@shop.test"), header_field(h, "Return-Path"));
    }

    // No Original-Rcpt-To at all; the third part text/rfc822-headers; a folded date, a comment, a type in capitals.
    void rfc822_headers_part() {
        std::string h = expect_arf("arf_headers_only.eml", {"abuse", "ISP-FBL/1.0", "1", "",
                                                            "bounces+J0000TT.r4.i4i4@shop.test", "", "192.0.2.10",
                                                            "Mon, 1 Dec 2026 10:22:00 +0000"});
        CPPUNIT_ASSERT_EQUAL(str("<https://news.shop.test/u/i4i4>"), header_field(h, "List-Unsubscribe"));
        CPPUNIT_ASSERT_EQUAL(str("xxxxxxxx@isp.test"), header_field(h, "To"));
    }

    void other_types_and_encodings() {
        std::string h = expect_arf("arf_fraud_base64.eml", {"fraud", "Bank-Phish-Desk/3.1", "1", "victim@bank.test",
                                                            "", "shop.test", "192.0.2.99", ""});
        CPPUNIT_ASSERT_EQUAL(str("<J0000UU.5@shop.test>"), header_field(h, "Message-ID"));
        h = expect_arf("arf_not_spam.eml", {"not-spam", "Webmail-FBL/0.9", "1", "happy@webmail.test", "", "", "", ""});
        CPPUNIT_ASSERT(h.empty());
    }

    void not_complaints() {
        for (const char* file : {"arf_no_type.eml", "ordinary.eml", "out_of_office.eml", "out_of_office_plain.eml",
                                 "postfix_dsn.eml", "exim_text.eml", "no_boundary.eml"})
            for (const std::string& text : test::both_line_ends(file)) CPPUNIT_ASSERT_MESSAGE(file, !parse_arf(text));
        // A plain message made only of fields, Feedback-Type among them, reads as one (the loose shape);
        // the same fields after a line of prose do not.
        CPPUNIT_ASSERT(parse_arf("From: fbl@x.test\n\nFeedback-Type: abuse\nUser-Agent: X\n"));
        CPPUNIT_ASSERT(!parse_arf("From: a@x.test\n\nHello,\nFeedback-Type: abuse\n"));
        CPPUNIT_ASSERT(!parse_arf("Content-Type: message/feedback-report\n\nFeedback-Type:\n"));
    }

    void header_field_of_section() {
        std::string h = "Return-Path: <b+T@shop.test>\r\nlist-unsubscribe: <mailto:u+T@shop.test>,\r\n <https://s.test/u/T>\r\n"
                        "X-Mxlane-Job:   J1  \r\nX-Mxlane-Job: J2\r\n\r\nX-Body: no\r\n";
        CPPUNIT_ASSERT_EQUAL(str("<b+T@shop.test>"), header_field(h, "return-path"));
        CPPUNIT_ASSERT_EQUAL(str("<mailto:u+T@shop.test>, <https://s.test/u/T>"), header_field(h, "List-Unsubscribe"));
        CPPUNIT_ASSERT_EQUAL(str("J1"), header_field(h, "X-MXLANE-JOB"));  // the first, trimmed
        CPPUNIT_ASSERT_EQUAL(str(""), header_field(h, "X-Body"));          // the section ends at the blank line
        CPPUNIT_ASSERT_EQUAL(str(""), header_field(h, "Missing"));
        CPPUNIT_ASSERT_EQUAL(str(""), header_field("", "Return-Path"));
    }

    void codes_and_addresses_in_text() {
        using namespace report;
        CPPUNIT_ASSERT_EQUAL(str("5.1.1"), find_enhanced_code("550-5.1.1 The email"));
        CPPUNIT_ASSERT_EQUAL(str("5.1.10"), find_enhanced_code("550 5.1.10 RESOLVER"));
        CPPUNIT_ASSERT_EQUAL(str("5.1.1"), find_enhanced_code("(#5.1.1)"));
        CPPUNIT_ASSERT_EQUAL(str(""), find_enhanced_code("from 127.0.0.5 and 127.5.1.1"));  // addresses, not codes
        CPPUNIT_ASSERT_EQUAL(str(""), find_enhanced_code("until 5.1.2027 or v5.1.1"));
        CPPUNIT_ASSERT_EQUAL(550, find_reply_code("said: 550 Requested"));
        CPPUNIT_ASSERT_EQUAL(0, find_reply_code("port 25 and 192.0.2.550 and 5500"));
        CPPUNIT_ASSERT_EQUAL(str("4.0.0"), status_in_text("451 try later", "5.0.0"));
        CPPUNIT_ASSERT_EQUAL(str("5.0.0"), status_in_text("no code here", "5.0.0"));
        CPPUNIT_ASSERT_EQUAL(str("a.b@x.test"), find_address("x <mailto:a.b@x.test>."));
        CPPUNIT_ASSERT_EQUAL(str(""), find_address("@ a@ @b"));
        CPPUNIT_ASSERT_EQUAL(str("User@Example.test"), typed_address("rfc822; <User@Example.test> (comment)"));
        CPPUNIT_ASSERT_EQUAL(str("用户@例子.test"), typed_address("utf-8; \\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.test"));
        CPPUNIT_ASSERT_EQUAL(str("a\\x{D800}b\\x{}c\\x{110000}\\x{41"), unescape_unicode("a\\x{D800}b\\x{}c\\x{110000}\\x{41"));
        CPPUNIT_ASSERT_EQUAL(str("\\x{7528}@x.test"), typed_address("rfc822; \\x{7528}@x.test"));  // only in utf-8
        CPPUNIT_ASSERT_EQUAL(str("550 a; b"), std::string(after_type("550 a; b")));  // no type: kept
        CPPUNIT_ASSERT_EQUAL(str("5.2.2"), without_comments("5.2.2 (mailbox (really) full)"));
    }

    // A status part nested deeper than the walk opens is not found; a shallower one is.
    void depth_is_bounded() {
        auto nested = [](int depth) {
            std::string head, tail;
            for (int i = 0; i < depth; ++i) {
                head += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
                        std::to_string(i) + "\n";
                tail = "\n--b" + std::to_string(i) + "--\n" + tail;
            }
            return "From: MAILER-DAEMON@x.test\n" + head +
                   "Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; deep@x.test\nAction: failed\n"
                   "Status: 5.1.1\n" + tail;
        };
        CPPUNIT_ASSERT(parse_dsn(nested(mime::kMaxPartDepth)));
        CPPUNIT_ASSERT(!parse_dsn(nested(mime::kMaxPartDepth + 1)));
        CPPUNIT_ASSERT(!parse_dsn(nested(5000)));  // no stack to exhaust
    }

    // Megabytes in the shapes that make naive parsers quadratic: each is read in well under a second.
    void hostile_sizes_stay_linear() {
        const std::size_t mb4 = 4 << 20;
        std::string dsn_head = "From: MAILER-DAEMON@x.test\nContent-Type: multipart/report; boundary=b\n\n--b\n"
                               "Content-Type: message/delivery-status\n\n";
        std::string groups;
        while (groups.size() < mb4) groups += "Final-Recipient: rfc822; r" + std::to_string(groups.size()) + "@x.test\n\n";
        auto many = parse_dsn(dsn_head + groups);
        CPPUNIT_ASSERT(many && many->recipients.size() == kMaxDsnRecipients);
        std::string generic = "From: MAILER-DAEMON@x.test\n\n";
        while (generic.size() < mb4) generic += "u" + std::to_string(generic.size()) + "@x.test 5.1.1\n";
        auto g = parse_dsn(generic);
        CPPUNIT_ASSERT(g && g->recipients.size() == kMaxDsnRecipients);
        const std::string shapes[] = {
            "From: MAILER-DAEMON@x.test\n\n" + std::string(mb4, '@'),
            "From: MAILER-DAEMON@x.test\n\n" + std::string(mb4, 'a') + "@",
            "From: MAILER-DAEMON@x.test\n\n" + std::string(mb4, '<'),
            "From: MAILER-DAEMON@x.test\nSubject: delay\n\n" + std::string(mb4, '5') + ".1.1",
            "Content-Type: multipart/report; boundary=" + std::string(mb4 / 2, 'b') + "\n\n" + std::string(mb4 / 2, '-'),
            "Content-Type: text/html\n\n" + std::string(mb4, '<'),
            "Content-Type: multipart/mixed; boundary=b\n\n" + std::string(mb4 / 4, 'x') + "\n--b\n\n--b\n" +
                std::string(mb4 / 4, '\n') + "--b--",
            std::string(mb4, '\n'),
            std::string(mb4, ' ') + ":",
            "Content-Type: text/plain\n\nThis is the qmail-send program\n" + std::string(mb4 / 8, '\n') +
                std::string(mb4 / 2, 'x'),
            "From: x\n\nThis message was created automatically by mail delivery software.\n"
            "could not be delivered to one or more of its\n" + std::string(mb4 / 16, ' ') + "a@b\n",
        };
        for (const auto& s : shapes) {
            double t = seconds_for(s);
            CPPUNIT_ASSERT_MESSAGE("took " + std::to_string(t) + " s", t < kLinearSeconds);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ArfReportTest);
