// test_warmup: warm-up arithmetic: UTC days, day of an address's life, the schedule's caps and the counts per provider.
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/warmup.hpp"

using namespace mxlane::qrunner;

class WarmupTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(WarmupTest);
    CPPUNIT_TEST(days_are_utc_days);
    CPPUNIT_TEST(schedule_last_cap_repeats);
    CPPUNIT_TEST(room_per_address_and_provider);
    CPPUNIT_TEST(new_day_new_count);
    CPPUNIT_TEST_SUITE_END();

public:
    void days_are_utc_days() {
        // 2026-12-02T00:00:00Z is day 20789.
        const std::int64_t midnight = 20789 * kDayMs;
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20789), epoch_day(midnight));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20789), epoch_day(midnight + kDayMs - 1));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20788), epoch_day(midnight - 1));
        CPPUNIT_ASSERT_EQUAL(midnight + kDayMs, next_day_ms(midnight));
        CPPUNIT_ASSERT_EQUAL(midnight + kDayMs, next_day_ms(midnight + kDayMs - 1));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(-1), epoch_day(-1));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1), life_day(100, 100));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), life_day(100, 102));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1), life_day(105, 102));  // first day ahead of the clock
    }

    void schedule_last_cap_repeats() {
        WarmupSchedule none;
        CPPUNIT_ASSERT_EQUAL(kNoCap, none.cap(1));
        WarmupSchedule s{{50, 100, 500}};
        CPPUNIT_ASSERT_EQUAL(std::int64_t(50), s.cap(1));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(100), s.cap(2));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(500), s.cap(3));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(500), s.cap(40));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(50), s.cap(0));
    }

    void room_per_address_and_provider() {
        WarmupSchedule s{{3, 10}};
        WarmupBook book;
        const std::int64_t today = 20789;
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), book.room("127.0.0.2", "mx:.sink.test", s, today));
        auto t = book.take("127.0.0.2", "mx:.sink.test", 2, today);
        CPPUNIT_ASSERT(t.first_day && *t.first_day == today);  // first use is recorded once
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), t.count.sent);
        CPPUNIT_ASSERT(!book.take("127.0.0.2", "mx:.sink.test", 1, today).first_day);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), book.room("127.0.0.2", "mx:.sink.test", s, today));
        // Another provider, another address: their own caps.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), book.room("127.0.0.2", "mx:.other.test", s, today));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), book.room("127.0.0.3", "mx:.sink.test", s, today));
        CPPUNIT_ASSERT_EQUAL(kNoCap, book.room("127.0.0.2", "mx:.sink.test", WarmupSchedule{}, today));
    }

    void new_day_new_count() {
        WarmupSchedule s{{3, 10}};
        WarmupBook book;
        book.load_first_days({{"::1", 20789}});
        book.load_count("::1", "mx:.sink.test", {1, 3});
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), book.room("::1", "mx:.sink.test", s, 20789));
        // The next day: day 2 of its life, cap 10, nothing sent yet.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), book.day("::1", 20790));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), book.room("::1", "mx:.sink.test", s, 20790));
        auto t = book.take("::1", "mx:.sink.test", 4, 20790);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), t.count.day);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(4), t.count.sent);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(6), book.room("::1", "mx:.sink.test", s, 20790));
        // The first day moved back (mxlanectl pools warmup): day 5, the last cap, a fresh count.
        book.load_first_days({{"::1", 20786}});
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), book.room("::1", "mx:.sink.test", s, 20790));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(WarmupTest);
