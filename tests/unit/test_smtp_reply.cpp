// test_smtp_reply: the incremental SMTP reply parser and enhanced status codes.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/smtp_reply.hpp"

using namespace mxlane;
using Status = ReplyParser::Status;

namespace {

// Feeds `bytes` and expects exactly one complete reply.
Reply one(std::string_view bytes) {
    ReplyParser p;
    p.feed(bytes);
    Reply r;
    CPPUNIT_ASSERT(p.next(r) == Status::complete);
    Reply extra;
    CPPUNIT_ASSERT(p.next(extra) == Status::incomplete);
    return r;
}

std::string malformed(std::string_view bytes) {
    ReplyParser p;
    p.feed(bytes);
    Reply r;
    Status s = p.next(r);
    CPPUNIT_ASSERT(s == Status::malformed);
    CPPUNIT_ASSERT(p.next(r) == Status::malformed);  // stays failed
    return p.error();
}

}  // namespace

class SmtpReplyTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SmtpReplyTest);
    CPPUNIT_TEST(single_line);
    CPPUNIT_TEST(multi_line);
    CPPUNIT_TEST(enhanced_codes);
    CPPUNIT_TEST(classes_and_strings);
    CPPUNIT_TEST(mismatched_codes);
    CPPUNIT_TEST(overlong);
    CPPUNIT_TEST(garbage);
    CPPUNIT_TEST(split_across_reads);
    CPPUNIT_TEST(several_replies_in_one_read);
    CPPUNIT_TEST_SUITE_END();

public:
    void single_line() {
        Reply r = one("250 Ok\r\n");
        CPPUNIT_ASSERT_EQUAL(250, r.code);
        CPPUNIT_ASSERT_EQUAL(std::string("Ok"), r.text);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), r.lines.size());
        CPPUNIT_ASSERT(!r.synthetic);
        // A bare code is a whole reply (RFC 5321 4.2: the text is optional).
        r = one("354\r\n");
        CPPUNIT_ASSERT_EQUAL(354, r.code);
        CPPUNIT_ASSERT_EQUAL(std::string(""), r.text);
        // A bare LF is tolerated.
        CPPUNIT_ASSERT_EQUAL(221, one("221 bye\n").code);
    }

    void multi_line() {
        Reply r = one("250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
        CPPUNIT_ASSERT_EQUAL(250, r.code);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), r.lines.size());
        CPPUNIT_ASSERT_EQUAL(std::string("SIZE 1000"), r.lines[2]);
        CPPUNIT_ASSERT_EQUAL(std::string("mx.example.com PIPELINING SIZE 1000 8BITMIME"), r.text);
        // An empty continuation text is allowed.
        r = one("220-\r\n220 ready\r\n");
        CPPUNIT_ASSERT_EQUAL(std::string("ready"), r.text);
    }

    void enhanced_codes() {
        Reply r = one("550 5.1.1 <a@b>: user unknown\r\n");
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), r.enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string("<a@b>: user unknown"), r.text);
        // RFC 2034: every line repeats the code; text shows it once, in front.
        r = one("452-4.2.2 mailbox full\r\n452 4.2.2 try later\r\n");
        CPPUNIT_ASSERT_EQUAL(std::string("4.2.2"), r.enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string("mailbox full try later"), r.text);
        CPPUNIT_ASSERT_EQUAL(std::string("452 4.2.2 mailbox full try later"), r.str());
        // The class digit must match the reply code (RFC 3463, RFC 2034 3).
        r = one("550 4.1.1 mixed up\r\n");
        CPPUNIT_ASSERT_EQUAL(std::string(""), r.enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string("4.1.1 mixed up"), r.text);
        CPPUNIT_ASSERT_EQUAL(std::string("5.0.0"), r.dsn());
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.0"), r.dsn("5.1.0"));
        // Not a code: too many digits, a missing part, something glued on.
        CPPUNIT_ASSERT_EQUAL(std::string(""), one("250 2.1000.0 x\r\n").enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string(""), one("250 2.1 x\r\n").enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string(""), one("250 2.1.0x\r\n").enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string("2.1.0"), one("250 2.1.0\r\n").enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.123"), one("421 4.7.123 slow down\r\n").enhanced);
        CPPUNIT_ASSERT_EQUAL(std::string(""), enhanced_code_prefix("3.0.0 x", 354));
    }

    void classes_and_strings() {
        CPPUNIT_ASSERT(one("250 ok\r\n").positive());
        CPPUNIT_ASSERT(one("354 go\r\n").positive());
        CPPUNIT_ASSERT(one("451 later\r\n").temporary());
        CPPUNIT_ASSERT(one("550 no\r\n").permanent());
        CPPUNIT_ASSERT_EQUAL(std::string("4.0.0"), one("451 later\r\n").dsn());
        CPPUNIT_ASSERT_EQUAL(std::string("250 ok"), one("250 ok\r\n").str());
        Reply made = Reply::make(451, "4.4.2", "lost connection");
        CPPUNIT_ASSERT(made.synthetic);
        CPPUNIT_ASSERT(made.temporary());
        CPPUNIT_ASSERT_EQUAL(std::string("451 4.4.2 lost connection"), made.str());
        CPPUNIT_ASSERT_EQUAL(std::string("4.4.2"), made.dsn("4.0.0"));
    }

    void mismatched_codes() {
        std::string why = malformed("250-first\r\n251 second\r\n");
        CPPUNIT_ASSERT(why.find("250 to 251") != std::string::npos);
    }

    void overlong() {
        // A line without an end, longer than the cap: fails before it ends.
        ReplyParser p;
        p.feed("250 " + std::string(ReplyParser::max_line, 'x'));
        Reply r;
        CPPUNIT_ASSERT(p.next(r) == Status::malformed);
        CPPUNIT_ASSERT(p.error().find("longer than 8192") != std::string::npos);
        // A complete line over the cap.
        malformed("250 " + std::string(ReplyParser::max_line, 'y') + "\r\n");
        // Lines within the cap, but a reply over 64 KiB altogether.
        std::string many;
        for (int i = 0; i < 100; ++i) many += "250-" + std::string(1000, 'z') + "\r\n";
        many += "250 end\r\n";
        CPPUNIT_ASSERT(malformed(many).find("reply longer than 65536") != std::string::npos);
        // Just within both caps is fine.
        std::string fine;
        for (int i = 0; i < 7; ++i) fine += "250-" + std::string(8000, 'a') + "\r\n";
        fine += "250 end\r\n";
        CPPUNIT_ASSERT_EQUAL(std::size_t(8), one(fine).lines.size());
    }

    void garbage() {
        malformed("hello there\r\n");
        malformed("25 short\r\n");
        malformed("2500-glued\r\n");
        malformed("650 out of range\r\n");
        malformed("150 no preliminary replies in SMTP\r\n");
        malformed("-250 backwards\r\n");
        malformed(std::string_view("\x00\x01\x02\xff\r\n", 6));
        malformed("\r\n");
        std::string why = malformed("99 not a reply\r\n");
        CPPUNIT_ASSERT(why.find("malformed reply line") != std::string::npos);
        // Garbage after a good reply: the good one still comes out first.
        ReplyParser p;
        p.feed("250 ok\r\nxyz\r\n");
        Reply r;
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT(p.next(r) == Status::malformed);
    }

    void split_across_reads() {
        std::string all = "250-mx.test\r\n250-PIPELINING\r\n250 2.0.0 SMTPUTF8\r\n";
        ReplyParser p;
        Reply r;
        for (std::size_t i = 0; i + 1 < all.size(); ++i) {
            p.feed(all.substr(i, 1));
            CPPUNIT_ASSERT(p.next(r) == Status::incomplete);
        }
        p.feed(all.substr(all.size() - 1));
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), r.lines.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), p.buffered());
        // CR and LF in separate reads.
        ReplyParser q;
        q.feed("550 5.1.1 no\r");
        CPPUNIT_ASSERT(q.next(r) == Status::incomplete);
        q.feed("\n");
        CPPUNIT_ASSERT(q.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(std::string("no"), r.text);
    }

    void several_replies_in_one_read() {
        // A pipelined batch answered at once (RFC 2920).
        ReplyParser p;
        p.feed("250 2.1.0 ok\r\n550 5.1.1 no\r\n451 4.3.0 later\r\n354 go");
        Reply r;
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(250, r.code);
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(550, r.code);
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(451, r.code);
        CPPUNIT_ASSERT(p.next(r) == Status::incomplete);
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), p.buffered());
        p.feed("\r\n");
        CPPUNIT_ASSERT(p.next(r) == Status::complete);
        CPPUNIT_ASSERT_EQUAL(354, r.code);
        p.reset();
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), p.buffered());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SmtpReplyTest);
