// test_shaping: a destination's limits together with its provider's: shared connections, rates,
// suspension and its expiry, backoff resumed by hand, the ramp back up.
#include <cppunit/extensions/HelperMacros.h>

#include <boost/asio/io_context.hpp>

#include "qrunner/destination.hpp"

using namespace mxlane::qrunner;
using namespace std::chrono_literals;

namespace {

// A destination of `own` connections, under `provider` when given.
std::unique_ptr<Destination> destination(boost::asio::io_context& io, int own,
                                         const std::shared_ptr<Shaping>& provider = nullptr) {
    auto d = std::make_unique<Destination>(io.get_executor());
    d->own->concurrency.configure(own);
    d->provider = provider;
    return d;
}

std::shared_ptr<Shaping> provider_of(int connections) {
    auto p = std::make_shared<Shaping>();
    p->name = "mx:.bigmail.test";
    p->provider = true;
    p->concurrency.configure(connections);
    return p;
}

}  // namespace

class ShapingTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ShapingTest);
    CPPUNIT_TEST(connections_shared_by_the_provider);
    CPPUNIT_TEST(own_limit_still_holds);
    CPPUNIT_TEST(message_rate_shared);
    CPPUNIT_TEST(suspension_holds_every_destination_and_expires);
    CPPUNIT_TEST(own_suspension_holds_one);
    CPPUNIT_TEST(backoff_resumed_and_ramped);
    CPPUNIT_TEST(idle_connection_holds_the_provider);
    CPPUNIT_TEST(without_provider_widest_is_own);
    CPPUNIT_TEST_SUITE_END();

    boost::asio::io_context io;
    const Clock::time_point t0 = Clock::now();

public:
    void connections_shared_by_the_provider() {
        auto p = provider_of(2);
        auto a = destination(io, 5, p), b = destination(io, 5, p);
        a->opened(t0);
        CPPUNIT_ASSERT(b->may_open(t0));
        b->opened(t0);
        CPPUNIT_ASSERT_EQUAL(2, p->active);
        CPPUNIT_ASSERT(!a->may_open(t0));
        CPPUNIT_ASSERT(!b->may_open(t0));
        a->closed();
        CPPUNIT_ASSERT(b->may_open(t0));
        CPPUNIT_ASSERT_EQUAL(0, a->active());
        CPPUNIT_ASSERT_EQUAL(1, b->active());
    }

    void own_limit_still_holds() {
        auto p = provider_of(10);
        auto a = destination(io, 1, p);
        a->opened(t0);
        CPPUNIT_ASSERT(!a->may_open(t0));
        CPPUNIT_ASSERT(destination(io, 1, p)->may_open(t0));
    }

    void message_rate_shared() {
        auto p = provider_of(10);
        p->messages.configure(3600, 1h, t0);  // one a second, a burst of one
        auto a = destination(io, 5, p), b = destination(io, 5, p);
        CPPUNIT_ASSERT(a->take_message(t0));
        CPPUNIT_ASSERT(!b->take_message(t0));
        CPPUNIT_ASSERT(b->message_ready_at(t0) >= t0 + 900ms);
        CPPUNIT_ASSERT(b->take_message(t0 + 1s));
        // A destination's own rate is not spent when the provider has no token.
        a->own->messages.configure(3600, 1h, t0 + 1s);
        CPPUNIT_ASSERT(!a->take_message(t0 + 1s));
        CPPUNIT_ASSERT(a->own->messages.level(t0 + 1s) >= 1.0);
    }

    void suspension_holds_every_destination_and_expires() {
        auto p = provider_of(10);
        auto a = destination(io, 5, p), b = destination(io, 5, p);
        p->suspended_until = t0 + 1h;
        for (auto* d : {a.get(), b.get()}) {
            CPPUNIT_ASSERT(d->backing_off(t0));
            CPPUNIT_ASSERT(!d->may_open(t0));
            CPPUNIT_ASSERT(d->holds_until(t0) == t0 + 1h);
            CPPUNIT_ASSERT(!d->backing_off(t0 + 1h));
            CPPUNIT_ASSERT(d->may_open(t0 + 1h));
        }
        CPPUNIT_ASSERT(destination(io, 5)->may_open(t0));  // another provider's, or none
    }

    void own_suspension_holds_one() {
        auto p = provider_of(10);
        auto a = destination(io, 5, p), b = destination(io, 5, p);
        a->own->suspended_until = t0 + 10min;
        CPPUNIT_ASSERT(!a->may_open(t0));
        CPPUNIT_ASSERT(b->may_open(t0));
        CPPUNIT_ASSERT(a->holds_until(t0) == t0 + 10min);
        CPPUNIT_ASSERT(b->holds_until(t0) == t0);
    }

    void backoff_resumed_and_ramped() {
        auto p = provider_of(8);
        auto a = destination(io, 8, p);
        CPPUNIT_ASSERT(p->concurrency.throttled(t0, 1h));
        CPPUNIT_ASSERT_EQUAL(4, p->concurrency.limit());
        CPPUNIT_ASSERT(a->backing_off(t0 + 30min));
        p->concurrency.resume();
        CPPUNIT_ASSERT(!a->backing_off(t0 + 1s));
        CPPUNIT_ASSERT(a->may_open(t0 + 1s));
        for (int i = 0; i < AdaptiveConcurrency::kRampAfter - 1; ++i) CPPUNIT_ASSERT(!p->concurrency.clean());
        CPPUNIT_ASSERT(p->concurrency.clean());
        CPPUNIT_ASSERT_EQUAL(5, p->concurrency.limit());
    }

    void idle_connection_holds_the_provider() {
        auto p = provider_of(10);
        auto a = destination(io, 5, p), b = destination(io, 5, p);
        a->opened(t0);
        a->idle_started();
        CPPUNIT_ASSERT(!b->may_open(t0));  // the idle connection takes the next token itself
        a->idle_ended();
        CPPUNIT_ASSERT(b->may_open(t0));
    }

    void without_provider_widest_is_own() {
        auto a = destination(io, 3);
        CPPUNIT_ASSERT(&a->widest() == a.get()->own.get());
        auto p = provider_of(3);
        auto b = destination(io, 3, p);
        CPPUNIT_ASSERT(&b->widest() == p.get());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ShapingTest);
