// test_retry: retry_schedule steps (the last repeating) and the jitter's bounds (lifetimes: test_queue_lifetime).
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/retry.hpp"

using namespace mxlane::qrunner;

class RetryTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(RetryTest);
    CPPUNIT_TEST(steps_and_last_repeats);
    CPPUNIT_TEST(jitter_bounds);
    CPPUNIT_TEST(empty_schedule);
    CPPUNIT_TEST_SUITE_END();

public:
    void steps_and_last_repeats() {
        const std::vector<std::int64_t> s = {1, 2, 60};
        const std::int64_t now = 1000000;
        // `attempts` counts the attempt that just failed: the first failure waits s[0].
        CPPUNIT_ASSERT_EQUAL(now + 1000, next_attempt_ms(s, 1, now, 0));
        CPPUNIT_ASSERT_EQUAL(now + 2000, next_attempt_ms(s, 2, now, 0));
        CPPUNIT_ASSERT_EQUAL(now + 60000, next_attempt_ms(s, 3, now, 0));
        CPPUNIT_ASSERT_EQUAL(now + 60000, next_attempt_ms(s, 4, now, 0));
        CPPUNIT_ASSERT_EQUAL(now + 60000, next_attempt_ms(s, 1000, now, 0));
        CPPUNIT_ASSERT_EQUAL(now + 1000, next_attempt_ms(s, 0, now, 0));  // never tried: the first step
    }

    void jitter_bounds() {
        const std::vector<std::int64_t> s = {100};
        const std::int64_t now = 0;
        // Up to 10% later, never earlier, never a full 10% (spread is in [0, 1)).
        CPPUNIT_ASSERT_EQUAL(std::int64_t(100000), next_attempt_ms(s, 1, now, 0.0));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(105000), next_attempt_ms(s, 1, now, 0.5));
        auto top = next_attempt_ms(s, 1, now, 0.9999999);
        CPPUNIT_ASSERT(top > 109000 && top < 110000);
        CPPUNIT_ASSERT(next_attempt_ms(s, 1, now, 5.0) < 110000);     // out of range: clamped
        CPPUNIT_ASSERT_EQUAL(std::int64_t(100000), next_attempt_ms(s, 1, now, -1.0));
        // Different spreads give different times: a big job's deferrals do not all come due at once.
        CPPUNIT_ASSERT(next_attempt_ms(s, 1, now, 0.1) != next_attempt_ms(s, 1, now, 0.2));
    }

    void empty_schedule() {
        CPPUNIT_ASSERT_EQUAL(std::int64_t(300000), next_attempt_ms({}, 1, 0, 0));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(RetryTest);
