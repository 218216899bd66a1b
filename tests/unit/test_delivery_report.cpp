// test_delivery_report: delivery status notifications from the corpus (tests/unit/reports/) and from mxlane itself, read field by field.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "libshared/delivery_report.hpp"
#include "qrunner/notify.hpp"
#include "tests/unit/report_samples.hpp"

using namespace mxlane;

namespace {

struct Want {
    std::string final_rcpt, action, status, diagnostic, remote, original;
};

// Every field of every recipient, for the sample with LF and with CRLF line ends.
void expect_dsn(const std::string& file, const std::string& format, const std::vector<Want>& want,
                const std::string& returned_id = "", const std::string& envid = "") {
    for (const std::string& text : test::both_line_ends(file)) {
        std::string at = file + (text.find('\r') != std::string::npos ? " (CRLF)" : " (LF)");
        auto r = parse_dsn(text);
        CPPUNIT_ASSERT_MESSAGE(at + ": not read", r.has_value());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, format, r->format);
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, want.size(), r->recipients.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            const DsnRecipient& got = r->recipients[i];
            std::string where = at + " recipient " + std::to_string(i);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].final_rcpt, got.final_recipient);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].original, got.original_recipient);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].action, got.action);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].status, got.status);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].diagnostic, got.diagnostic);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(where, want[i].remote, got.remote_mta);
        }
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, returned_id, header_field(r->original_message_headers, "message-id"));
        CPPUNIT_ASSERT_EQUAL_MESSAGE(at, envid, r->original_envelope_id);
        CPPUNIT_ASSERT_MESSAGE(at + ": read as a complaint", !parse_arf(text));
    }
}

void expect_no_dsn(const std::string& file) {
    for (const std::string& text : test::both_line_ends(file)) CPPUNIT_ASSERT_MESSAGE(file, !parse_dsn(text));
}

}  // namespace

class DeliveryReportTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryReportTest);
    CPPUNIT_TEST(rfc3464_as_mtas_send_them);
    CPPUNIT_TEST(rfc3464_delayed_and_several_recipients);
    CPPUNIT_TEST(rfc3464_encodings_and_nesting);
    CPPUNIT_TEST(rfc3464_loose_fields);
    CPPUNIT_TEST(rfc6533_utf8_report);
    CPPUNIT_TEST(mxlane_own_dsn);
    CPPUNIT_TEST(postfix_text);
    CPPUNIT_TEST(exim_text);
    CPPUNIT_TEST(qmail_text);
    CPPUNIT_TEST(exchange_text);
    CPPUNIT_TEST(generic_text);
    CPPUNIT_TEST(malformed_multiparts);
    CPPUNIT_TEST_SUITE_END();

public:
    void rfc3464_as_mtas_send_them() {
        expect_dsn("postfix_dsn.eml", "rfc3464",
                   {{"nobody@example.test", "failed", "5.1.1",
                     "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table",
                     "mx1.example.test", "nobody@example.test"}},
                   "<J00002A.7@shop.test>");
        // Exim writes Status 5.0.0; the server's 5.1.1 says more.
        expect_dsn("exim_dsn.eml", "rfc3464",
                   {{"gone@mailbox.test", "failed", "5.1.1", "550 5.1.1 <gone@mailbox.test>: mailbox unavailable",
                     "mx.mailbox.test", ""}},
                   "<J00003B.1@shop.test>");
        expect_dsn("sendmail_dsn.eml", "rfc3464",
                   {{"Unknown.User@sendmail.test", "failed", "5.1.1",
                     "550 5.1.1 <Unknown.User@sendmail.test>... User unknown", "mailhost.sendmail.test", ""}},
                   "<J00004C.3@shop.test>");
        expect_dsn("office365_dsn.eml", "rfc3464",
                   {{"missing@contoso.test", "failed", "5.1.10",
                     "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
                     "AM0PR01MB0001.eurprd01.o365.test", ""}},
                   "<J00005D.9@shop.test>");
        expect_dsn("gmail_dsn.eml", "rfc3464",
                   {{"no.such.person@gmail.test", "failed", "5.1.1",
                     "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 "
                     "double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. "
                     "550 5.1.1 https://support.google.test/mail/?p=NoSuchUser a1si2b3c4d5.0 - gsmtp",
                     "gmail-smtp-in.l.google.test.", ""}},
                   "<J00006E.2@shop.test>");
        expect_dsn("yahoo_dsn.eml", "rfc3464",
                   {{"closed.account@yahoo.test", "failed", "5.0.0",
                     "554 delivery error: dd This user doesn't have a yahoo.test account (closed.account@yahoo.test) "
                     "[-5] - mta1000.mail.yahoo.test",
                     "", ""}},
                   "<J00007F.4@shop.test>");
        expect_dsn("courier_dsn.eml", "rfc3464",
                   {{"full@courier.test", "failed", "5.0.0", "552 mailbox full", "mx.courier.test [192.0.2.70]", ""}},
                   "<J00008G.5@shop.test>");
        expect_dsn("mdaemon_dsn.eml", "rfc3464",
                   {{"quota@md.test", "failed", "5.2.2",
                     "552 Requested mail action aborted: exceeded storage allocation", "", "Quota@md.test"}},
                   "", "J00009H.6");
    }

    void rfc3464_delayed_and_several_recipients() {
        expect_dsn("postfix_delayed_dsn.eml", "rfc3464",
                   {{"slow@greylist.test", "delayed", "4.2.0",
                     "450 4.2.0 <slow@greylist.test>: Recipient address rejected: Greylisted, see http://greylist.test/",
                     "mx.greylist.test", "slow@greylist.test"}},
                   "<J00002A.8@shop.test>");
        expect_dsn("multi_recipient_dsn.eml", "rfc3464",
                   {{"first@multi.test", "failed", "5.1.1", "550 5.1.1 first@multi.test: no such user", "mx.multi.test", ""},
                    {"second@multi.test", "delayed", "4.4.7", "connection timed out", "", ""},
                    {"third@multi.test", "delivered", "2.0.0", "", "", ""}},
                   "", "J0000AA.env");
    }

    void rfc3464_encodings_and_nesting() {
        expect_dsn("base64_status_dsn.eml", "rfc3464",
                   {{"encoded@b64.test", "failed", "5.7.1", "554 5.7.1 Message rejected as spam by content filtering",
                     "in.b64.test", ""}});
        expect_dsn("qp_status_dsn.eml", "rfc3464",
                   {{"long.address.for.testing@qp.test", "failed", "5.4.1",
                     "550 5.4.1 Recipient address rejected: Access denied by tenant policy = blocked", "", ""}});
        expect_dsn("nested_mixed_dsn.eml", "rfc3464",
                   {{"deep@gateway.test", "failed", "5.1.2", "550 5.1.2 bad destination system address", "", ""}},
                   "<J0000DD.3@shop.test>");
    }

    void rfc3464_loose_fields() {
        // Names in any case, comments, a folded diagnostic.
        expect_dsn("comments_dsn.eml", "rfc3464",
                   {{"Full.Box@Comments.test", "failed", "5.2.2", "552 5.2.2 Mailbox full (quota 100 MB exceeded)",
                     "mx.comments.test", ""}});
        // No Status, no Action, no per-message group: both from the diagnostic.
        expect_dsn("no_status_dsn.eml", "rfc3464",
                   {{"nostatus@minimal.test", "failed", "5.7.1", "554 5.7.1 relay access denied", "", ""},
                    {"basiconly@minimal.test", "delayed", "4.0.0", "451 try again later", "", ""}});
        // No Diagnostic-Code: the notice's own words about the address (case aside) stand in.
        expect_dsn("nodiag_dsn.eml", "rfc3464",
                   {{"moved@lean.test", "failed", "5.1.6",
                     "551 5.1.6 user has moved; no forwarding address (in reply to RCPT TO command)", "mx.lean.test",
                     ""}});
        // The status part labelled text/plain, in second place of a delivery-status report.
        expect_dsn("mislabeled_status_dsn.eml", "rfc3464", {{"olduser@old.test", "failed", "5.1.1", "", "", ""}});
    }

    void rfc6533_utf8_report() {
        expect_dsn("global_dsn.eml", "rfc3464",
                   {{"用户@例子.test", "failed", "5.1.1", "550 5.1.1 用户@例子.test: mailbox unknown", "", "用户@例子.test"}},
                   "<J0000EE.4@shop.test>");
    }

    // What the qrunner sends the sender reads back as it was meant.
    void mxlane_own_dsn() {
        qrunner::FailureReport f;
        f.hostname = "mta.mxlane.test";
        f.job_token = "J00002A";
        f.sender = "bounces+J00002A.r7.k3x9@shop.test";
        f.arrival = 1701201246000 - 3600000;
        f.original_headers = "From: news@shop.test\nSubject: November\nMessage-ID: <J00002A.7@shop.test>\n";
        f.rcpt.address = "bob@x.test";
        f.rcpt.state = store::RcptState::bounced;
        f.rcpt.dsn = "5.1.1";
        f.rcpt.reply_code = 550;
        f.rcpt.reply_text = "550 5.1.1 no such user";
        f.rcpt.host = "mx.x.test[192.0.2.7]:25";
        auto r = parse_dsn(qrunner::render_dsn(f, 1701201246000));
        CPPUNIT_ASSERT(r);
        CPPUNIT_ASSERT_EQUAL(std::string("rfc3464"), r->format);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), r->recipients.size());
        CPPUNIT_ASSERT_EQUAL(std::string("bob@x.test"), r->recipients[0].final_recipient);
        CPPUNIT_ASSERT_EQUAL(std::string("failed"), r->recipients[0].action);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), r->recipients[0].status);
        CPPUNIT_ASSERT_EQUAL(std::string("550 5.1.1 no such user"), r->recipients[0].diagnostic);
        CPPUNIT_ASSERT_EQUAL(std::string("mx.x.test"), r->recipients[0].remote_mta);
        CPPUNIT_ASSERT_EQUAL(std::string("November"), header_field(r->original_message_headers, "Subject"));
    }

    void postfix_text() {
        expect_dsn("postfix_text.eml", "postfix",
                   {{"staff@old-postfix.test", "failed", "5.2.2",
                     "552 5.2.2 <staff@old-postfix.test>: Mailbox full (in reply to RCPT TO command)",
                     "mailstore.old-postfix.test", ""},
                    {"nowhere@no-such-domain.test", "failed", "5.0.0",
                     "Host or domain name not found. Name service error for name=no-such-domain.test type=AAAA: Host "
                     "not found",
                     "", ""},
                    {"plain@old-postfix.test", "failed", "5.0.0",
                     "550 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)",
                     "mx.old-postfix.test", ""}});
        expect_dsn("postfix_text_delay.eml", "postfix",
                   {{"later@busy.test", "delayed", "4.0.0",
                     "connect to mx.busy.test[192.0.2.110]:25: Connection timed out", "", ""}});
    }

    void exim_text() {
        expect_dsn("exim_text.eml", "exim",
                   {{"first@exim.test", "failed", "5.1.1",
                     "550 5.1.1 <first@exim.test>: Recipient address rejected: User unknown", "mail.exim.test", ""},
                    {"second@exim.test", "failed", "5.7.1", "554 5.7.1 Message rejected because of policy",
                     "mail.exim.test", ""}},
                   "<J0000LL.1@shop.test>");
        expect_dsn("exim_text_old.eml", "exim",
                   {{"olduser@old.exim.test", "failed", "5.0.0", "550 User unknown", "mx.old.exim.test", ""}},
                   "<J0000LL.2@shop.test>");
        expect_dsn("exim_delay.eml", "exim",
                   {{"waiting@slow.exim.test", "delayed", "4.7.1", "451 4.7.1 Please try again later",
                     "mx.slow.exim.test", ""}});
    }

    void qmail_text() {
        expect_dsn("qmail_text.eml", "qmail",
                   {{"remote@qmail-remote.test", "failed", "5.1.1",
                     "550 5.1.1 <remote@qmail-remote.test>... User unknown", "192.0.2.130", ""},
                    {"local@qmail.test", "failed", "5.1.1", "Sorry, no mailbox here by that name. (#5.1.1)", "", ""},
                    {"basic@qmail-remote.test", "failed", "5.0.0",
                     "553 sorry, that domain isn't in my list of allowed rcpthosts", "192.0.2.131", ""}},
                   "<J0000MM.1@shop.test>");
        expect_dsn("qmail_delay.eml", "qmail",
                   {{"queued@qmail-remote.test", "delayed", "4.3.0", "451 4.3.0 Temporary local problem", "", ""}});
    }

    void exchange_text() {
        expect_dsn("exchange_text.eml", "exchange",
                   {{"former@exch.test", "failed", "5.1.1", "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "", ""},
                    {"mailbox.full@exch.test", "failed", "5.2.2",
                     "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException."
                     "MapiExceptionShutoffQuotaExceeded",
                     "", ""}},
                   "<J0000NN.1@shop.test>");
        expect_dsn("exchange_2003.eml", "exchange",
                   {{"legacy.user@legacy.test", "failed", "5.1.1",
                     "The e-mail account does not exist at the organization this message was sent to. Check the "
                     "e-mail address, or contact the recipient directly to find out the correct address. "
                     "<EXCH2003.legacy.test #5.1.1>",
                     "", ""}},
                   "<J0000NN.2@shop.test>");
        // The returned message's subject after "Undeliverable:" says nothing about the report.
        std::string echo = test::report_sample("exchange_text.eml");
        echo.replace(echo.find("Quarterly newsletter"), 20, "Warning: shipping delay");
        auto failed = parse_dsn(echo);
        CPPUNIT_ASSERT(failed && failed->recipients.size() == 2 && failed->recipients[1].action == "failed");
        expect_dsn("exchange_delay_html.eml", "exchange",
                   {{"later.user@delay.test", "delayed", "4.4.7", "400 4.4.7 Message delayed", "", ""}});
    }

    void generic_text() {
        expect_dsn("sendmail_text.eml", "generic",
                   {{"gone.user@sm.test", "failed", "5.1.1",
                     "<gone.user@sm.test> (reason: 550 5.1.1 <gone.user@sm.test>... User unknown)", "", ""}},
                   "<J0000OO.1@shop.test>");
        // From the mail system, but no address goes with an enhanced code: nothing to record.
        expect_no_dsn("generic_no_pair.eml");
        // A person's mail and auto-replies that quote codes and addresses are no bounces.
        expect_no_dsn("ordinary.eml");
        expect_no_dsn("out_of_office.eml");
        expect_no_dsn("out_of_office_plain.eml");
    }

    void malformed_multiparts() {
        // No closing delimiter: the last part runs to the end of the message.
        expect_dsn("unclosed_dsn.eml", "rfc3464",
                   {{"truncated@cut.test", "failed", "5.1.1", "550 5.1.1 no mailbox", "", ""}});
        // The boundary never appears: no part, no report.
        expect_no_dsn("no_boundary.eml");
        for (const char* junk : {"", "\n", "\r\n\r\n", "Content-Type: multipart/report; boundary=\"\"\n\n--\n",
                                 "Content-Type: message/delivery-status\n\nFinal-Recipient:\n"})
            CPPUNIT_ASSERT(!parse_dsn(junk));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryReportTest);
