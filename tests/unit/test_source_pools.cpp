// test_source_pools: the source_pools file: pools in file order, canonical addresses, FILE:LINE errors.
#include <cppunit/extensions/HelperMacros.h>

#include <stdexcept>

#include "libshared/source_pools.hpp"
#include "tests/unit/temp_dir.hpp"

using mxlane::SourcePools;

namespace {

std::string error_of(const std::string& text) {
    try {
        mxlane::parse_source_pools(text, "pools.cf");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

class SourcePoolsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SourcePoolsTest);
    CPPUNIT_TEST(pools_keep_file_order);
    CPPUNIT_TEST(addresses_are_canonical);
    CPPUNIT_TEST(malformed_lines_name_file_and_line);
    CPPUNIT_TEST(duplicate_address_is_refused);
    CPPUNIT_TEST(load_reads_a_file);
    CPPUNIT_TEST_SUITE_END();

public:
    void pools_keep_file_order() {
        SourcePools p = mxlane::parse_source_pools(
            "# newsletters and notices\n"
            "news    127.0.0.2  out2.mail.test\n"
            "notices 127.0.0.3  out3.mail.test   # trailing comment\n"
            "\n"
            "news    127.0.0.4  OUT4.mail.test\n"
            "news    ::1        out6.mail.test\n",
            "pools.cf");
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), p.addresses.size());
        auto news = p.pool("news");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), news.size());
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.2"), news[0]->address);
        CPPUNIT_ASSERT_EQUAL(std::string("out4.mail.test"), news[1]->helo);  // EHLO names in lower case
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), news[2]->address);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), p.pool("notices").size());
        CPPUNIT_ASSERT(p.pool("nosuch").empty());
        CPPUNIT_ASSERT(p.pool("").empty());
        CPPUNIT_ASSERT_EQUAL(std::string("notices"), p.find("127.0.0.3")->pool);
        CPPUNIT_ASSERT(p.find("127.0.0.9") == nullptr);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), p.pool_names().size());
        CPPUNIT_ASSERT(mxlane::parse_source_pools("# nothing\n\n", "pools.cf").addresses.empty());
    }

    void addresses_are_canonical() {
        SourcePools p = mxlane::parse_source_pools("a 0:0:0:0:0:0:0:1 out6.mail.test\n", "pools.cf");
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), p.addresses[0].address);
    }

    void malformed_lines_name_file_and_line() {
        CPPUNIT_ASSERT_EQUAL(std::string("pools.cf:2: expected POOL ADDRESS HELO_NAME: news 127.0.0.2"),
                             error_of("# c\nnews 127.0.0.2\n"));
        CPPUNIT_ASSERT(error_of("news 127.0.0.2 a.test extra\n").starts_with("pools.cf:1: expected POOL"));
        CPPUNIT_ASSERT_EQUAL(std::string("pools.cf:1: not an IPv4 or IPv6 address: 127.0.0.256"),
                             error_of("news 127.0.0.256 a.test\n"));
        CPPUNIT_ASSERT(error_of("news out.test 127.0.0.2\n").starts_with("pools.cf:1: not an IPv4"));
        CPPUNIT_ASSERT(error_of("news 127.0.0.2 bad_name.test\n").starts_with("pools.cf:1: bad HELO name"));
        CPPUNIT_ASSERT(error_of("news 127.0.0.2 a..test\n").starts_with("pools.cf:1: bad HELO name"));
        CPPUNIT_ASSERT(error_of("ne/ws 127.0.0.2 a.test\n").starts_with("pools.cf:1: bad pool name"));
    }

    void duplicate_address_is_refused() {
        CPPUNIT_ASSERT_EQUAL(std::string("pools.cf:3: duplicate address 127.0.0.2 (already in pool news)"),
                             error_of("news 127.0.0.2 a.test\nnews 127.0.0.3 b.test\nother 127.0.0.2 c.test\n"));
        CPPUNIT_ASSERT(error_of("a ::1 a.test\nb 0::1 b.test\n").starts_with("pools.cf:2: duplicate address ::1"));
    }

    void load_reads_a_file() {
        mxlane::test::TempDir dir;
        std::string file = dir.write("pools", "news 127.0.0.2 out2.mail.test\nnews 127.0.0.2 x.test\n");
        try {
            mxlane::load_source_pools(file);
            CPPUNIT_FAIL("a duplicate address must throw");
        } catch (const std::runtime_error& e) {
            CPPUNIT_ASSERT(std::string(e.what()).starts_with(file + ":2: duplicate address"));
        }
        try {
            mxlane::load_source_pools(dir.file("missing"));
            CPPUNIT_FAIL("a missing file must throw");
        } catch (const std::runtime_error& e) {
            CPPUNIT_ASSERT(std::string(e.what()).starts_with(dir.file("missing") + ": cannot read"));
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SourcePoolsTest);
