// test_outcome: every claimed recipient gets exactly one outcome, and every connection slot is freed,
// whatever ends a delivery (a reply, an exception in a coroutine, a coroutine torn down, a closed gate);
// the relay's loop token is fresh for every transaction.
#include <cppunit/extensions/HelperMacros.h>

#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "libshared/loop_token.hpp"
#include "qrunner/destination.hpp"
#include "qrunner/outcome.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using namespace mxlane::qrunner;
namespace asio = boost::asio;

namespace {

// The store side of the scheduler, recorded (the scheduler's real one writes
// to Berkeley DB; what matters here is what delivery reports, and how often).
struct RecordingOutcomes : Outcomes {
    std::vector<std::pair<std::string, Reply>> concluded;  // address, reply
    std::vector<std::string> put_back_addresses;
    int slots_released = 0;

    void conclude(const Work& w, const std::vector<Reply>& replies, const std::string&, double, double,
                  const std::vector<std::string>&) override {
        for (std::size_t i = 0; i < w.rcpts.size(); ++i)
            concluded.emplace_back(w.rcpts[i].address, i < replies.size() ? replies[i] : replies.back());
    }
    void put_back(const Work& w, std::int64_t) override {
        for (const auto& r : w.rcpts) put_back_addresses.push_back(r.address);
    }
    void connection_done(const std::shared_ptr<Destination>&) override { ++slots_released; }
};

Work three_recipients() {
    Work w;
    for (const char* a : {"a@x.test", "b@x.test", "c@x.test"}) {
        store::Recipient r;
        r.address = a;
        r.job_id = 7;
        w.rcpts.push_back(r);
    }
    return w;
}

// What a delivery coroutine does when its session throws halfway.
asio::awaitable<void> throwing_delivery(std::shared_ptr<OutcomeGate> gate, std::shared_ptr<Destination> d,
                                        OwnedWork w) {
    ConnectionSlot slot(gate, d);
    OwnedWork mine = std::move(w);
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("session blew up");
}

// A delivery that waits forever (a server that never answers).
asio::awaitable<void> stuck_delivery(std::shared_ptr<OutcomeGate> gate, std::shared_ptr<Destination> d, OwnedWork w) {
    ConnectionSlot slot(gate, d);
    OwnedWork mine = std::move(w);
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

class OutcomeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(OutcomeTest);
    CPPUNIT_TEST(reported_once);
    CPPUNIT_TEST(exception_in_coroutine_defers_all);
    CPPUNIT_TEST(torn_down_coroutine_after_gate_closed_reports_nothing);
    CPPUNIT_TEST(moved_owner_reports_once);
    CPPUNIT_TEST(relay_token_fresh_per_transaction);
    CPPUNIT_TEST_SUITE_END();

public:
    void reported_once() {
        RecordingOutcomes sink;
        auto gate = std::make_shared<OutcomeGate>(sink);
        {
            OwnedWork w(gate, three_recipients());
            w.conclude({Reply::make(250, "2.0.0", "ok")}, "mx[127.0.0.1]:25");
            CPPUNIT_ASSERT(!w);
            w.conclude({Reply::make(550, "5.1.1", "again")}, "none");  // no second outcome
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), sink.concluded.size());
        for (const auto& [addr, reply] : sink.concluded) CPPUNIT_ASSERT_EQUAL(250, reply.code);
    }

    void exception_in_coroutine_defers_all() {
        RecordingOutcomes sink;
        auto gate = std::make_shared<OutcomeGate>(sink);
        asio::io_context io;
        auto d = std::make_shared<Destination>(io.get_executor());
        std::string error;
        asio::co_spawn(io, throwing_delivery(gate, d, OwnedWork(gate, three_recipients())),
                       [&](std::exception_ptr e) {
                           try {
                               if (e) std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               error = ex.what();
                           }
                       });
        io.run();
        CPPUNIT_ASSERT_EQUAL(std::string("session blew up"), error);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), sink.concluded.size());
        for (const auto& [addr, reply] : sink.concluded) {
            CPPUNIT_ASSERT(reply.temporary());
            CPPUNIT_ASSERT_EQUAL(std::string("4.3.0"), reply.dsn());
        }
        CPPUNIT_ASSERT_EQUAL(1, sink.slots_released);
    }

    void torn_down_coroutine_after_gate_closed_reports_nothing() {
        RecordingOutcomes sink;
        auto gate = std::make_shared<OutcomeGate>(sink);
        {
            asio::io_context io;
            auto d = std::make_shared<Destination>(io.get_executor());
            asio::co_spawn(io, stuck_delivery(gate, d, OwnedWork(gate, three_recipients())), [](std::exception_ptr) {});
            io.run_for(std::chrono::milliseconds(20));
            // shutdown_timeout: the scheduler abandons what is on the wire; the
            // recipients stay in flight in the store for recover_inflight.
            gate->close();
        }  // the io_context destroys the suspended coroutine
        CPPUNIT_ASSERT(sink.concluded.empty());
        CPPUNIT_ASSERT_EQUAL(0, sink.slots_released);

        // Without the gate closed, a coroutine torn down still defers its recipients.
        RecordingOutcomes sink2;
        auto gate2 = std::make_shared<OutcomeGate>(sink2);
        {
            asio::io_context io;
            auto d = std::make_shared<Destination>(io.get_executor());
            asio::co_spawn(io, stuck_delivery(gate2, d, OwnedWork(gate2, three_recipients())),
                           [](std::exception_ptr) {});
            io.run_for(std::chrono::milliseconds(20));
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), sink2.concluded.size());
        CPPUNIT_ASSERT_EQUAL(1, sink2.slots_released);
    }

    void moved_owner_reports_once() {
        RecordingOutcomes sink;
        auto gate = std::make_shared<OutcomeGate>(sink);
        {
            OwnedWork a(gate, three_recipients());
            OwnedWork b = std::move(a);
            OwnedWork c;
            c = std::move(b);
            c.put_back(0);
        }
        CPPUNIT_ASSERT(sink.concluded.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), sink.put_back_addresses.size());
    }

    void relay_token_fresh_per_transaction() {
        test::TempDir dir;
        MessageData m;
        m.job_token = "J00002A";
        m.meta.id = 17;
        m.meta.sender = "News@Shop.test";
        // As it goes out: dot-stuffed. The relay's milter sees the body unstuffed.
        const std::string wire = "Subject: x\r\n\r\nbody\r\n..dot\r\n";
        const std::int64_t t0 = 1700000000;
        const std::vector<std::string> accepted{"b@two.test", "a@one.test"};
        auto token_of = [&](const std::string& field) {
            CPPUNIT_ASSERT(field.starts_with(std::string(kLoopHeader) + ": "));
            CPPUNIT_ASSERT(field.ends_with("\r\n"));
            return field.substr(std::strlen(kLoopHeader) + 2, field.size() - std::strlen(kLoopHeader) - 4);
        };
        std::string first = token_of(m.relay_field(m.meta.sender, accepted, wire, dir.path(), t0));
        // Two hours later, for a job still relaying: the token must still be good.
        std::string later = token_of(m.relay_field(m.meta.sender, accepted, wire, dir.path(), t0 + 7200));
        // What the milter at the relay sees: the envelope (recipients in any order) and the body.
        BodyDigest body;
        body.add("body\r\n.dot\r\n");
        const LoopBinding seen{"news@shop.test", {"a@one.test", "b@two.test"}, body.hex()};
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), first, 3600, t0 + 10, seen));
        CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), first, 3600, t0 + 7200, seen));
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), later, 3600, t0 + 7200, seen));
        LoopBinding fewer = seen;
        fewer.recipients.pop_back();
        CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), first, 3600, t0 + 10, fewer));
        LoopBinding stuffed = seen;
        BodyDigest as_sent;
        as_sent.add("body\r\n..dot\r\n");
        stuffed.body_digest = as_sent.hex();
        CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), first, 3600, t0 + 10, stuffed));
        // Sent with a VERP sender, the token is bound to that sender, as the relay's milter sees it.
        std::string verp = token_of(m.relay_field("bounces+abc@shop.test", accepted, wire, dir.path(), t0));
        LoopBinding verp_seen = seen;
        verp_seen.sender = "bounces+abc@shop.test";
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), verp, 3600, t0 + 10, verp_seen));
        CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), verp, 3600, t0 + 10, seen));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(OutcomeTest);
