// test_shared_throttles: reply rules' throttles as hosts exchange them (encoding, expiry, another host's news) and their share.
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/shaping.hpp"
#include "qrunner/shared_throttles.hpp"

using namespace mxlane::qrunner;
using namespace std::chrono_literals;

class SharedThrottlesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SharedThrottlesTest);
    CPPUNIT_TEST(encoding);
    CPPUNIT_TEST(another_hosts_throttle);
    CPPUNIT_TEST(ended_ones_are_forgotten);
    CPPUNIT_TEST(a_share_while_alone);
    CPPUNIT_TEST_SUITE_END();

public:
    void encoding() {
        const SharedThrottle t{1700000000000, 0.5, "450 4.2.1 slow down"};
        CPPUNIT_ASSERT_EQUAL(std::string("1700000000000 0.5 450 4.2.1 slow down"), t.encode());
        auto back = SharedThrottle::decode(t.encode());
        CPPUNIT_ASSERT(back);
        CPPUNIT_ASSERT_EQUAL(t.until, back->until);
        CPPUNIT_ASSERT_EQUAL(t.per_second, back->per_second);
        CPPUNIT_ASSERT_EQUAL(t.reason, back->reason);
        CPPUNIT_ASSERT(SharedThrottle::decode("1700000000000 0.000277777778"));  // 1/h, no reason
        for (const char* bad : {"", "x 1 r", "1700000000000", "1700000000000 0 r", "1700000000000 -1", "17 1x"})
            CPPUNIT_ASSERT_MESSAGE(bad, !SharedThrottle::decode(bad));
    }

    void another_hosts_throttle() {
        ThrottleTable table;
        CPPUNIT_ASSERT(table.add("mx:.google.com", "5000 2 421 4.7.0 try later", 1000));
        CPPUNIT_ASSERT(!table.add("mx:.google.com", "5000 2 421 4.7.0 try later", 1000));  // known: no news
        CPPUNIT_ASSERT(table.add("mx:.google.com", "6000 2 421 4.7.0 try later", 1000));   // extended
        CPPUNIT_ASSERT(!table.add("d.test", "900 2 r", 1000));                              // ended on the way
        CPPUNIT_ASSERT(!table.add("d.test", "garbage", 1000));
        auto t = table.get("mx:.google.com", 1000);
        CPPUNIT_ASSERT(t && t->until == 6000 && t->per_second == 2);
        CPPUNIT_ASSERT(!table.get("d.test", 1000));
        CPPUNIT_ASSERT(table.remove("mx:.google.com"));
        CPPUNIT_ASSERT(!table.remove("mx:.google.com"));
    }

    void ended_ones_are_forgotten() {
        ThrottleTable table;
        table.put("a.test", SharedThrottle{2000, 1, "r"}, 1000);
        table.put("b.test", SharedThrottle{5000, 1, "r"}, 1000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), table.read(1000).size());
        CPPUNIT_ASSERT(!table.get("a.test", 2000));
        const auto left = table.read(3000);  // what SharedList sends: a.test ended, so it leaves Redis too
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), left.size());
        CPPUNIT_ASSERT_EQUAL(std::string("5000 1 r"), left.at("b.test"));
    }

    // While Redis is away each host applies the throttle at its share, as every limit.
    void a_share_while_alone() {
        Shaping sh;
        const auto now = Clock::now();
        sh.throttle(now, now + 1h, 2, 1);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(2.0, sh.messages.per_second(), 1e-9);
        CPPUNIT_ASSERT(sh.rethrottle(now, 2));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.0, sh.messages.per_second(), 1e-9);
        CPPUNIT_ASSERT(sh.rethrottle(now, 1));
        CPPUNIT_ASSERT_DOUBLES_EQUAL(2.0, sh.messages.per_second(), 1e-9);
        CPPUNIT_ASSERT(!sh.rethrottle(now + 2h, 1));  // over
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SharedThrottlesTest);
