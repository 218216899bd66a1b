// test_webhook: event_webhook's pure parts: batches of spool lines, the spool and its offset file, the URL, the signature.
#include <cppunit/extensions/HelperMacros.h>

#include <sys/stat.h>

#include <boost/json/parse.hpp>

#include <fstream>
#include <sstream>

#include "libshared/webhook_spool.hpp"
#include "qrunner/webhook.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using mxlane::qrunner::parse_webhook_url;

namespace {

std::string line(int i) { return "{\"n\":" + std::to_string(i) + "}\n"; }

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::uint64_t inode(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_ino;
}

}  // namespace

class WebhookTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(WebhookTest);
    CPPUNIT_TEST(take_lines_bounds);
    CPPUNIT_TEST(json_array_of_lines);
    CPPUNIT_TEST(position_round_trip);
    CPPUNIT_TEST(spool_resumes_at_offset);
    CPPUNIT_TEST(spool_batches_are_bounded);
    CPPUNIT_TEST(spool_restarts_when_drained);
    CPPUNIT_TEST(offset_of_another_spool_starts_afresh);
    CPPUNIT_TEST(another_process_appends);
    CPPUNIT_TEST(bad_offset_file_is_an_error);
    CPPUNIT_TEST(url_parses);
    CPPUNIT_TEST(url_errors);
    CPPUNIT_TEST(signature_is_hmac_sha256);
    CPPUNIT_TEST_SUITE_END();

public:
    void take_lines_bounds() {
        std::size_t n = 0;
        const std::string text = line(1) + line(2) + line(3) + "{\"partial";
        CPPUNIT_ASSERT_EQUAL(text.size() - 9, take_lines(text, 10, 1000, n));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), n);
        CPPUNIT_ASSERT_EQUAL(line(1).size() * 2, take_lines(text, 2, 1000, n));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), n);
        // Bytes: only whole lines within the bound, but one line even when it is longer.
        CPPUNIT_ASSERT_EQUAL(line(1).size(), take_lines(text, 10, line(1).size() + 3, n));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), n);
        CPPUNIT_ASSERT_EQUAL(line(1).size(), take_lines(text, 10, 2, n));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), n);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), take_lines("{\"partial", 10, 1000, n));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), n);
    }

    void json_array_of_lines() {
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":1},{\"n\":2}]"), json_array(line(1) + line(2)));
        CPPUNIT_ASSERT_EQUAL(std::string("[]"), json_array(""));
        auto v = boost::json::parse(json_array(line(1) + line(2) + line(3)));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), v.as_array().size());
    }

    void position_round_trip() {
        auto p = parse_position(format_position({12345, 678}));
        CPPUNIT_ASSERT(p);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(12345), p->inode);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(678), p->offset);
        CPPUNIT_ASSERT(!parse_position(""));
        CPPUNIT_ASSERT(!parse_position("12"));
        CPPUNIT_ASSERT(!parse_position("12 x"));
        CPPUNIT_ASSERT(!parse_position("12 34 56"));
        CPPUNIT_ASSERT(!parse_position("-1 34"));
    }

    void spool_resumes_at_offset() {
        test::TempDir dir;
        {
            WebhookSpool spool(dir.path());
            CPPUNIT_ASSERT(!spool.next());
            spool.append(line(1) + line(2));
            spool.append(line(3));
            auto b = spool.next();
            CPPUNIT_ASSERT(b);
            CPPUNIT_ASSERT_EQUAL(std::size_t(3), b->events);
            CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":1},{\"n\":2},{\"n\":3}]"), b->body);
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(3 * line(1).size()), spool.backlog());
            spool.acknowledge(*b);
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), spool.backlog());
            CPPUNIT_ASSERT(!spool.next());
            spool.append(line(4));
            auto unacknowledged = spool.next();
            CPPUNIT_ASSERT(unacknowledged);  // not acknowledged: the next start sends it again
        }
        CPPUNIT_ASSERT_EQUAL(format_position({inode(dir.file("webhook.spool")), 3 * line(1).size()}),
                             read(dir.file("webhook.offset")));
        WebhookSpool again(dir.path());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(line(4).size()), again.backlog());
        auto b = again.next();
        CPPUNIT_ASSERT(b);
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":4}]"), b->body);
    }

    void spool_batches_are_bounded() {
        test::TempDir dir;
        WebhookSpool spool(dir.path());
        std::string lines;
        for (std::size_t i = 0; i < kWebhookBatchEvents + 7; ++i) lines += line(static_cast<int>(i));
        spool.append(lines + "{\"half");  // a line being written is not sent half
        auto b = spool.next();
        CPPUNIT_ASSERT_EQUAL(kWebhookBatchEvents, b->events);
        CPPUNIT_ASSERT(b->full);  // more lines wait: sent at once, not after kWebhookBatchAgeMs
        spool.acknowledge(*b);
        b = spool.next();
        CPPUNIT_ASSERT_EQUAL(std::size_t(7), b->events);
        CPPUNIT_ASSERT(!b->full);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(lines.size()), b->end);
        spool.acknowledge(*b);
        CPPUNIT_ASSERT(!spool.next());
        spool.append("\":1}\n");
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"half\":1}]"), spool.next()->body);
    }

    void spool_restarts_when_drained() {
        test::TempDir dir;
        WebhookSpool spool(dir.path(), 20);
        const auto first = inode(dir.file("webhook.spool"));
        spool.append(line(1));
        auto small = spool.next();
        spool.acknowledge(*small);  // below the bound: kept
        CPPUNIT_ASSERT_EQUAL(first, inode(dir.file("webhook.spool")));
        spool.append(line(2) + line(3));
        auto b = spool.next();
        spool.append(line(4));  // came after the batch: no restart, nothing lost
        spool.acknowledge(*b);
        CPPUNIT_ASSERT_EQUAL(first, inode(dir.file("webhook.spool")));
        b = spool.next();
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":4}]"), b->body);
        spool.acknowledge(*b);  // all sent and big: a new spool
        const auto second = inode(dir.file("webhook.spool"));
        CPPUNIT_ASSERT(second != first);
        CPPUNIT_ASSERT_EQUAL(std::string(), read(dir.file("webhook.spool")));
        CPPUNIT_ASSERT_EQUAL(format_position({second, 0}), read(dir.file("webhook.offset")));
        spool.append(line(5));
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":5}]"), spool.next()->body);
        CPPUNIT_ASSERT_EQUAL(line(5), read(dir.file("webhook.spool")));
    }

    // The milter's lines (append_to_spool: its own open file) are sent like the
    // qrunner's, and after a restart they go to the new spool, not the old one.
    void another_process_appends() {
        test::TempDir dir;
        WebhookSpool spool(dir.path(), 20);
        append_to_spool(dir.path(), line(1) + line(2));
        spool.append(line(3));
        auto b = spool.next();
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":1},{\"n\":2},{\"n\":3}]"), b->body);
        const auto first = inode(dir.file("webhook.spool"));
        spool.acknowledge(*b);  // all sent and big: a new spool
        CPPUNIT_ASSERT(inode(dir.file("webhook.spool")) != first);
        append_to_spool(dir.path(), line(4));
        CPPUNIT_ASSERT_EQUAL(std::string("[{\"n\":4}]"), spool.next()->body);
        CPPUNIT_ASSERT_EQUAL(line(4), read(dir.file("webhook.spool")));
        CPPUNIT_ASSERT_THROW(append_to_spool(dir.file("missing"), line(5)), std::runtime_error);
    }

    void offset_of_another_spool_starts_afresh() {
        test::TempDir dir;
        dir.write("webhook.spool", line(1) + line(2));
        // A stop between a spool's restart and its new offset: the offset names the old inode.
        dir.write("webhook.offset", format_position({inode(dir.file("webhook.spool")) + 1, 5}));
        WebhookSpool spool(dir.path());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), spool.next()->events);
        // An offset past the end (the spool replaced by hand): from the start too.
        dir.write("webhook.offset", format_position({inode(dir.file("webhook.spool")), 500}));
        WebhookSpool again(dir.path());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), again.next()->events);
    }

    void bad_offset_file_is_an_error() {
        test::TempDir dir;
        dir.write("webhook.offset", "garbage\n");
        CPPUNIT_ASSERT_THROW(WebhookSpool spool(dir.path()), std::runtime_error);
        CPPUNIT_ASSERT_THROW(WebhookSpool spool(dir.path() + "/missing"), std::runtime_error);
    }

    void url_parses() {
        auto u = parse_webhook_url("http://127.0.0.1:8080/hooks/mail?x=1");
        CPPUNIT_ASSERT(!u.tls);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), u.host);
        CPPUNIT_ASSERT_EQUAL(std::string("8080"), u.port);
        CPPUNIT_ASSERT_EQUAL(std::string("/hooks/mail?x=1"), u.target);
        CPPUNIT_ASSERT(!u.default_port);
        u = parse_webhook_url("https://events.example.test");
        CPPUNIT_ASSERT(u.tls);
        CPPUNIT_ASSERT_EQUAL(std::string("443"), u.port);
        CPPUNIT_ASSERT_EQUAL(std::string("/"), u.target);
        CPPUNIT_ASSERT(u.default_port);
        u = parse_webhook_url("http://[::1]:9000/e");
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), u.host);
        CPPUNIT_ASSERT_EQUAL(std::string("9000"), u.port);
    }

    void url_errors() {
        for (const char* bad : {"", "ftp://x.test/", "events.example.test/hook", "http://", "http:///path",
                                "http://x.test:/", "http://x.test:0/", "http://x.test:65536/", "http://x.test:8a/",
                                "http://user@x.test/", "http://x.test/a b", "http://x.test/#frag", "http://[::1/",
                                "http://x_y!.test/"})
            CPPUNIT_ASSERT_THROW_MESSAGE(bad, parse_webhook_url(bad), std::invalid_argument);
    }

    void signature_is_hmac_sha256() {
        // RFC 4231, test case 2.
        CPPUNIT_ASSERT_EQUAL(std::string("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
                             qrunner::webhook_signature("Jefe", "what do ya want for nothing?"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(WebhookTest);
