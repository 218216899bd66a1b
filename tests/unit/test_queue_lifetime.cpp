// test_queue_lifetime: max_queue_lifetime's rule (the store's claim at its boundary: test_store).
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/queue_lifetime.hpp"

using mxlane::lifetime_over;

class QueueLifetimeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(QueueLifetimeTest);
    CPPUNIT_TEST(rule);
    CPPUNIT_TEST_SUITE_END();

public:
    void rule() {
        CPPUNIT_ASSERT(!lifetime_over(0, 2999, 3000));
        CPPUNIT_ASSERT(lifetime_over(0, 3000, 3000));  // over when it has been exactly that long
        CPPUNIT_ASSERT(lifetime_over(1000, 100000, 3000));
        CPPUNIT_ASSERT(!lifetime_over(0, 1000000000, 0));  // 0: no lifetime
        CPPUNIT_ASSERT(!lifetime_over(5000, 1000, 3000));  // a clock that went back
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(QueueLifetimeTest);
