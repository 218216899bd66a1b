// test_recipient_loop: the VERP sender and the List-Unsubscribe fields a recipient's copy gets.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/recipient_token.hpp"
#include "qrunner/notify.hpp"
#include "qrunner/recipient_loop.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using namespace mxlane::qrunner;

class RecipientLoopTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RecipientLoopTest);
    CPPUNIT_TEST(verp_sender);
    CPPUNIT_TEST(unsubscribe_fields);
    CPPUNIT_TEST(unsubscribe_replaces_the_messages_own);
    CPPUNIT_TEST(unsubscribe_odd_headers);
    CPPUNIT_TEST_SUITE_END();

    test::TempDir dir_;

    Settings settings() const {
        Settings s;
        s.queue_directory = dir_.path();
        return s;
    }
    static MessageData message() {
        MessageData m;
        m.meta.job_id = 42;
        m.meta.id = 1;
        m.meta.sender = "news@shop.test";
        return m;
    }
    static store::Recipient rcpt() {
        store::Recipient r;
        r.job_id = 42;
        r.seq = store::make_seq(1, 7);
        r.address = "ann@one.test";
        return r;
    }
    std::string token() const { return recipient_token_make(dir_.path(), {42, store::make_seq(1, 7)}); }

public:
    void verp_sender() {
        Settings s = settings();
        MessageData m = message();
        CPPUNIT_ASSERT_EQUAL(std::string("news@shop.test"), envelope_sender(s, m, rcpt()));  // off
        CPPUNIT_ASSERT(!needs_recipient_token(s, m.meta));
        s.bounce_address = "bounces@shop.test";
        CPPUNIT_ASSERT(needs_recipient_token(s, m.meta));
        CPPUNIT_ASSERT_EQUAL("bounces+" + token() + "@shop.test", envelope_sender(s, m, rcpt()));
        s.recipient_delimiter = "-";
        CPPUNIT_ASSERT_EQUAL("bounces-" + token() + "@shop.test", envelope_sender(s, m, rcpt()));
        // <> asks for no bounces; mxlane's own reports keep their sender.
        m.meta.sender = "";
        CPPUNIT_ASSERT_EQUAL(std::string(), envelope_sender(s, m, rcpt()));
        m.meta.host_queue_id = std::string(kNotifyJobPrefix) + "summary:1";
        CPPUNIT_ASSERT(!needs_recipient_token(s, m.meta));
        s.bounce_address.clear();
        s.unsubscribe_url = "https://news.shop.test/u/";
        CPPUNIT_ASSERT(!needs_unsubscribe_fields(s, m.meta));
        CPPUNIT_ASSERT(needs_unsubscribe_fields(s, message().meta));
        CPPUNIT_ASSERT(needs_recipient_token(s, message().meta));
    }

    void unsubscribe_fields() {
        Settings s = settings();
        s.unsubscribe_address = "unsubscribe@shop.test";
        const std::string text = "From: news@shop.test\nSubject: hi\n\nbody\n";
        CPPUNIT_ASSERT_EQUAL("From: news@shop.test\nSubject: hi\nList-Unsubscribe: <mailto:unsubscribe+" + token() +
                                 "@shop.test>\n\nbody\n",
                             with_unsubscribe_fields(s, message(), rcpt(), text));
        s.unsubscribe_address.clear();
        s.unsubscribe_url = "https://news.shop.test/u/";
        CPPUNIT_ASSERT_EQUAL("From: news@shop.test\nSubject: hi\nList-Unsubscribe: <https://news.shop.test/u/" + token() +
                                 ">\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n\nbody\n",
                             with_unsubscribe_fields(s, message(), rcpt(), text));
        s.unsubscribe_address = "unsubscribe@shop.test";
        const std::string crlf = "From: news@shop.test\r\nSubject: hi\r\n\r\nbody\r\n";
        CPPUNIT_ASSERT_EQUAL("From: news@shop.test\r\nSubject: hi\r\nList-Unsubscribe: <mailto:unsubscribe+" + token() +
                                 "@shop.test>,\r\n <https://news.shop.test/u/" + token() +
                                 ">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nbody\r\n",
                             with_unsubscribe_fields(s, message(), rcpt(), crlf));
    }

    // One-click needs exactly one of each field: the message's own (any case, folded) give way.
    void unsubscribe_replaces_the_messages_own() {
        Settings s = settings();
        s.unsubscribe_url = "https://news.shop.test/u/";
        const std::string text =
            "list-unsubscribe: <mailto:old@shop.test>,\n\t<https://old.shop.test/x>\nFrom: news@shop.test\n"
            "LIST-UNSUBSCRIBE-POST: List-Unsubscribe=One-Click\nList-Unsubscribe-Help: <https://shop.test/help>\n"
            "\nList-Unsubscribe: in the body stays\n";
        CPPUNIT_ASSERT_EQUAL("From: news@shop.test\nList-Unsubscribe-Help: <https://shop.test/help>\n"
                             "List-Unsubscribe: <https://news.shop.test/u/" + token() +
                                 ">\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
                                 "\nList-Unsubscribe: in the body stays\n",
                             with_unsubscribe_fields(s, message(), rcpt(), text));
    }

    void unsubscribe_odd_headers() {
        Settings s = settings();
        s.unsubscribe_address = "unsubscribe@shop.test";
        const std::string field = "List-Unsubscribe: <mailto:unsubscribe+" + token() + "@shop.test>\n";
        // No empty line closes the header: one is added after the fields.
        CPPUNIT_ASSERT_EQUAL("Subject: hi\n" + field + "\n", with_unsubscribe_fields(s, message(), rcpt(), "Subject: hi"));
        // No header at all.
        CPPUNIT_ASSERT_EQUAL(field + "\nbody\n", with_unsubscribe_fields(s, message(), rcpt(), "\nbody\n"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(RecipientLoopTest);
