// test_dates: RFC 5322 dates and ISO 8601 times in UTC.
#include <cppunit/extensions/HelperMacros.h>

#include <ctime>
#include <random>
#include <string>

#include "libshared/dates.hpp"

using namespace mxlane;

namespace {
constexpr std::int64_t kNow = 1701201246000;  // Tue, 28 Nov 2023 19:54:06 UTC
}

class DatesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DatesTest);
    CPPUNIT_TEST(rfc5322);
    CPPUNIT_TEST(iso);
    CPPUNIT_TEST_SUITE_END();

public:
    void rfc5322() {
        CPPUNIT_ASSERT_EQUAL(std::string("Thu, 01 Jan 1970 00:00:00 +0000"), rfc5322_date(0));
        CPPUNIT_ASSERT_EQUAL(std::string("Tue, 28 Nov 2023 19:54:06 +0000"), rfc5322_date(kNow));
        CPPUNIT_ASSERT_EQUAL(std::string("Tue, 28 Nov 2023 19:54:06 +0000"), rfc5322_date(kNow + 999));  // ms cut
        CPPUNIT_ASSERT_EQUAL(std::string("Sat, 02 Jan 2021 03:04:05 +0000"), rfc5322_date(1609556645000));
        CPPUNIT_ASSERT_EQUAL(std::string("Thu, 29 Feb 2024 23:59:59 +0000"), rfc5322_date(1709251199000));
        // The same text as strftime's in the C locale (what mxlanectl submit used),
        // without depending on the locale.
        std::mt19937_64 random(5322);
        for (int i = 0; i < 1000; ++i) {
            std::int64_t ms = static_cast<std::int64_t>(random() % 4102444800000ULL);  // 1970 to 2100
            std::time_t t = static_cast<std::time_t>(ms / 1000);
            std::tm tm{};
            gmtime_r(&t, &tm);
            char buf[64];
            std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
            CPPUNIT_ASSERT_EQUAL(std::string(buf), rfc5322_date(ms));
        }
    }

    void iso() {
        CPPUNIT_ASSERT_EQUAL(std::string("2023-11-28T19:54:06Z"), iso_time(kNow));
        CPPUNIT_ASSERT_EQUAL(std::string(), iso_time(0));  // never happened
        CPPUNIT_ASSERT_EQUAL(std::string(), iso_time(-5));
        CPPUNIT_ASSERT_EQUAL(std::string("1970-01-01T00:00:01Z"), iso_time(1000));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DatesTest);
