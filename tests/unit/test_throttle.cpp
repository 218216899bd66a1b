// test_throttle: token buckets (rates per hour and per minute) and adaptive concurrency with its reply patterns.
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/backoff.hpp"
#include "qrunner/throttle.hpp"

using namespace mxlane;
using namespace mxlane::qrunner;
using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

namespace {

// Tokens taken over `span`, trying every `step`.
int taken_over(TokenBucket& b, Clock::time_point t0, Clock::duration span, Clock::duration step) {
    int n = 0;
    for (auto t = t0; t < t0 + span; t += step)
        while (b.try_take(t)) ++n;
    return n;
}

Reply reply(int code, const std::string& enhanced, const std::string& text) {
    Reply r;
    r.code = code;
    r.enhanced = enhanced;
    r.text = text;
    return r;
}

}  // namespace

class ThrottleTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ThrottleTest);
    CPPUNIT_TEST(unlimited);
    CPPUNIT_TEST(per_hour_rate_holds);
    CPPUNIT_TEST(burst_is_small);
    CPPUNIT_TEST(ready_at_counts_tokens_in_turn);
    CPPUNIT_TEST(reconfigure_keeps_tokens);
    CPPUNIT_TEST(per_minute_connections);
    CPPUNIT_TEST(patterns);
    CPPUNIT_TEST(halve_pause_ramp);
    CPPUNIT_TEST(configure_while_backed_off);
    CPPUNIT_TEST_SUITE_END();

public:
    void unlimited() {
        TokenBucket b;
        auto t = Clock::now();
        CPPUNIT_ASSERT(b.unlimited());
        for (int i = 0; i < 1000; ++i) CPPUNIT_ASSERT(b.try_take(t));
        CPPUNIT_ASSERT(b.ready_at(t, 1e6) == t);
        TokenBucket zero = per_hour(0, t);
        CPPUNIT_ASSERT(zero.unlimited());
    }

    void per_hour_rate_holds() {
        auto t0 = Clock::now();
        TokenBucket b = per_hour(3600, t0);  // one a second
        int n = taken_over(b, t0, 60s, 100ms);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(n), n >= 59 && n <= 61);
        TokenBucket slow = per_hour(30, t0);  // one every two minutes
        n = taken_over(slow, t0, 1h, 1s);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(n), n >= 30 && n <= 31);
    }

    void burst_is_small() {
        auto t0 = Clock::now();
        TokenBucket b = per_hour(36000, t0);  // ten a second: a burst of ten at most
        CPPUNIT_ASSERT_DOUBLES_EQUAL(10.0, b.burst(), 1e-9);
        int n = 0;
        while (b.try_take(t0)) ++n;
        CPPUNIT_ASSERT_EQUAL(10, n);
        // A long quiet spell saves no more than the burst.
        n = 0;
        while (b.try_take(t0 + 1h)) ++n;
        CPPUNIT_ASSERT_EQUAL(10, n);
        TokenBucket slow = per_hour(60, t0);  // under one a second: a burst of one
        CPPUNIT_ASSERT(slow.try_take(t0));
        CPPUNIT_ASSERT(!slow.try_take(t0 + 59s));
        CPPUNIT_ASSERT(slow.try_take(t0 + 60s));
    }

    void ready_at_counts_tokens_in_turn() {
        auto t0 = Clock::now();
        TokenBucket b = per_hour(3600, t0);
        CPPUNIT_ASSERT(b.ready_at(t0) == t0);  // starts full
        CPPUNIT_ASSERT(b.try_take(t0));
        auto next = b.ready_at(t0);
        CPPUNIT_ASSERT(next > t0 + 999ms && next <= t0 + 1001ms);
        auto tenth = b.ready_at(t0, 10);
        CPPUNIT_ASSERT(tenth > t0 + 9999ms && tenth <= t0 + 10001ms);
        CPPUNIT_ASSERT(!b.try_take(next - 1ms));
        CPPUNIT_ASSERT(b.try_take(next));
    }

    void reconfigure_keeps_tokens() {
        auto t0 = Clock::now();
        TokenBucket b = per_hour(3600, t0);
        CPPUNIT_ASSERT(b.try_take(t0));
        b.configure(7200, 1h, t0 + 100ms);  // SIGHUP: twice as fast, the bucket stays empty
        CPPUNIT_ASSERT(!b.try_take(t0 + 200ms));
        CPPUNIT_ASSERT(b.try_take(t0 + 700ms));
        b.configure(0, 1h, t0 + 800ms);  // no limit any more
        CPPUNIT_ASSERT(b.unlimited() && b.try_take(t0 + 800ms));
        b.configure(60, 1min, t0 + 900ms);  // a limit again: starts full
        CPPUNIT_ASSERT(b.try_take(t0 + 900ms));
        CPPUNIT_ASSERT(!b.try_take(t0 + 950ms));
    }

    void per_minute_connections() {
        auto t0 = Clock::now();
        TokenBucket b = per_minute(6, t0);  // one every ten seconds
        int n = taken_over(b, t0, 60s, 500ms);
        CPPUNIT_ASSERT_EQUAL(6, n);
    }

    void patterns() {
        ThrottlePatterns p = ThrottlePatterns::parse(" 4.7.0, too many connections ,Rate limit,,");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.patterns().size());
        CPPUNIT_ASSERT(p.matches(reply(421, "4.3.2", "service not available")));  // every 421
        CPPUNIT_ASSERT(p.matches(reply(450, "4.7.0", "try later")));
        CPPUNIT_ASSERT(p.matches(reply(451, "", "Too Many Connections from your IP")));
        CPPUNIT_ASSERT(p.matches(reply(452, "4.2.2", "rate limit exceeded")));
        CPPUNIT_ASSERT(!p.matches(reply(451, "4.7.1", "greylisted, please try again later")));
        CPPUNIT_ASSERT(!p.matches(reply(550, "5.7.0", "rate limit: no")));  // permanent: not a throttle
        CPPUNIT_ASSERT(!p.matches(reply(250, "2.0.0", "ok")));
        Reply made = Reply::make(421, "4.4.2", "lost connection");  // ours, not the server's
        CPPUNIT_ASSERT(!p.matches(made));
        CPPUNIT_ASSERT(ThrottlePatterns().matches(reply(421, "", "bye")));
        CPPUNIT_ASSERT(!ThrottlePatterns().matches(reply(451, "4.7.0", "x")));
    }

    void halve_pause_ramp() {
        auto t0 = Clock::now();
        AdaptiveConcurrency c(8);
        CPPUNIT_ASSERT_EQUAL(8, c.limit());
        CPPUNIT_ASSERT(!c.clean());  // not backed off: nothing to ramp
        CPPUNIT_ASSERT(c.throttled(t0, 5s));
        CPPUNIT_ASSERT_EQUAL(4, c.limit());
        CPPUNIT_ASSERT(c.paused(t0 + 4s) && !c.paused(t0 + 5s));
        CPPUNIT_ASSERT(!c.throttled(t0 + 1s, 5s));  // the same 421 heard on another connection
        CPPUNIT_ASSERT_EQUAL(4, c.limit());
        CPPUNIT_ASSERT(c.throttled(t0 + 6s, 5s));
        CPPUNIT_ASSERT(c.throttled(t0 + 12s, 5s));
        CPPUNIT_ASSERT(c.throttled(t0 + 18s, 5s));
        CPPUNIT_ASSERT_EQUAL(1, c.limit());  // never below one
        int raised = 0;
        for (int i = 0; i < 10 * AdaptiveConcurrency::kRampAfter; ++i) raised += c.clean();
        CPPUNIT_ASSERT_EQUAL(7, raised);
        CPPUNIT_ASSERT_EQUAL(8, c.limit());
        CPPUNIT_ASSERT(!c.backed_off());
    }

    void configure_while_backed_off() {
        auto t0 = Clock::now();
        AdaptiveConcurrency c(8);
        c.throttled(t0, 5s);
        c.configure(20);  // raised: the ramp gets there
        CPPUNIT_ASSERT_EQUAL(4, c.limit());
        CPPUNIT_ASSERT_EQUAL(20, c.configured());
        c.configure(2);  // lowered below the current limit: at once
        CPPUNIT_ASSERT_EQUAL(2, c.limit());
        AdaptiveConcurrency d(3);
        d.configure(5);
        CPPUNIT_ASSERT_EQUAL(5, d.limit());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ThrottleTest);
