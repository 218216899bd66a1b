// test_shared_state: limits across hosts (buckets, host count, fallback to a share) against a Redis double; Redis URLs.
#include <cppunit/extensions/HelperMacros.h>

#include <map>
#include <random>

#include "qrunner/redis_client.hpp"
#include "qrunner/shared_state.hpp"
#include "qrunner/throttle.hpp"

using namespace mxlane::qrunner;
using namespace std::chrono_literals;
using Clock = SharedState::Clock;

namespace {

// A double of the Redis side, because a real server cannot be made to skip
// one answer at a chosen moment, and its clock cannot be moved: the shared
// bucket is the tested TokenBucket on a clock the test moves; `up` false
// answers nothing, as a Redis that is down or too slow. The Lua script itself
// runs against a real redis-server in tests/integration/qrunner_shared.sh.
struct Redis {
    Clock::time_point now = Clock::time_point{} + 1000h;
    bool up = true;
    std::map<std::string, TokenBucket> buckets;
    std::map<std::string, std::int64_t> beats;  // host -> ms on the double's clock
    std::int64_t ms() const { return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count(); }
};

class Double final : public SharedBackend {
public:
    explicit Double(Redis& r) : r_(r) {}
    void take(const std::string& key, double per_second, double burst,
              std::function<void(std::optional<Take>)> done) override {
        if (!r_.up) return done({});
        auto [it, made] = r_.buckets.try_emplace(key);
        if (made) it->second = TokenBucket(static_cast<std::int64_t>(per_second * 3600), 1h, r_.now, burst);
        if (it->second.try_take(r_.now)) return done(Take{true, 0});
        done(Take{false, std::chrono::duration_cast<std::chrono::milliseconds>(it->second.ready_at(r_.now) - r_.now).count()});
    }
    void heartbeat(const std::string& host, const std::string&,
                   std::function<void(std::optional<std::vector<HostRow>>)> done) override {
        if (!r_.up) return done({});
        r_.beats[host] = r_.ms();
        std::vector<HostRow> rows;
        for (const auto& [h, ms] : r_.beats) rows.push_back(HostRow{h, ms, {}});
        done(rows);
    }

private:
    Redis& r_;
};

struct Host {
    Host(Redis& r, const std::string& name) : state(std::make_unique<Double>(r), name, "redis://127.0.0.1:6379/0", 1) {
        state.on_reshape([this] { ++reshapes; });
    }
    SharedState state;
    int reshapes = 0;
    int sent = 0;
    // Sends whatever the shared bucket "msg:d.test" (1/s, burst 1) lets through at `now`.
    void try_send(Clock::time_point now) {
        while (state.ready_at("msg:d.test", 1, 1, now) <= now) {
            state.take("msg:d.test");
            ++sent;
            if (!state.sharing()) return;  // alone: the local bucket (not here) is the limit
        }
    }
};

}  // namespace

class SharedStateTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SharedStateTest);
    CPPUNIT_TEST(two_hosts_share_one_bucket);
    CPPUNIT_TEST(alone_until_the_first_heartbeat);
    CPPUNIT_TEST(redis_away_each_host_takes_its_share);
    CPPUNIT_TEST(reconnect_backoff);
    CPPUNIT_TEST(urls);
    CPPUNIT_TEST_SUITE_END();

public:
    void two_hosts_share_one_bucket() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test");
        for (int round = 0; round < 2; ++round)  // the first beat of a sees a alone
            for (Host* h : {&a, &b}) h->state.beat({});
        CPPUNIT_ASSERT(a.state.sharing() && b.state.sharing());
        CPPUNIT_ASSERT_EQUAL(2, a.state.hosts_seen());
        CPPUNIT_ASSERT_EQUAL(1, a.state.divisor());
        const auto start = r.now;
        // Both hungry; which one asks first at a moment is chance, as between two machines.
        std::mt19937 chance(1);
        for (; r.now < start + 20s; r.now += 50ms) {
            const bool a_first = chance() % 2;
            Host& first = a_first ? a : b;
            Host& second = a_first ? b : a;
            first.try_send(r.now);
            second.try_send(r.now);
        }
        // One a second for 20 s, plus the burst of one: both hosts together.
        const int total = a.sent + b.sent;
        CPPUNIT_ASSERT_MESSAGE(std::to_string(total), total >= 20 && total <= 21);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(a.sent) + "/" + std::to_string(b.sent), a.sent >= 5 && b.sent >= 5);
    }

    void alone_until_the_first_heartbeat() {
        Redis r;
        Host a(r, "a.test");
        CPPUNIT_ASSERT(!a.state.sharing());
        CPPUNIT_ASSERT(a.state.ready_at("msg:d.test", 1, 1, r.now) == r.now);  // the local bucket decides
        CPPUNIT_ASSERT(r.buckets.empty());                                     // Redis not asked
    }

    void redis_away_each_host_takes_its_share() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test"), c(r, "c.test");
        for (int round = 0; round < 2; ++round)
            for (Host* h : {&a, &b, &c}) h->state.beat({});
        CPPUNIT_ASSERT_EQUAL(3, a.state.hosts_seen());
        CPPUNIT_ASSERT_EQUAL(0, a.reshapes - 1);  // sharing started: one reshape
        r.up = false;
        a.state.beat({});
        CPPUNIT_ASSERT(!a.state.sharing());
        CPPUNIT_ASSERT_EQUAL(3, a.state.divisor());  // 1/3 of every limit, from the hosts last seen
        CPPUNIT_ASSERT_EQUAL(2, a.reshapes);
        a.state.beat({});  // still away: nothing new (logged once)
        CPPUNIT_ASSERT(a.state.ready_at("msg:d.test", 1, 1, r.now) == r.now);  // nothing waits for Redis
        CPPUNIT_ASSERT_EQUAL(2, a.reshapes);
        // A token request that gets no answer counts as Redis away too.
        r.up = true;
        b.state.beat({});
        r.up = false;
        CPPUNIT_ASSERT(b.state.ready_at("msg:d.test", 1, 1, r.now) > r.now);
        CPPUNIT_ASSERT(!b.state.sharing());
        // Back: shared again, limits whole.
        r.up = true;
        r.now += 1s;
        a.state.beat({});
        CPPUNIT_ASSERT(a.state.sharing());
        CPPUNIT_ASSERT_EQUAL(1, a.state.divisor());
        CPPUNIT_ASSERT_EQUAL(3, a.reshapes);
    }

    void reconnect_backoff() {
        CPPUNIT_ASSERT(reconnect_delay(0) == 100ms);
        CPPUNIT_ASSERT(reconnect_delay(1) == 200ms);
        CPPUNIT_ASSERT(reconnect_delay(3) == 800ms);
        CPPUNIT_ASSERT(reconnect_delay(7) == 10s);
        CPPUNIT_ASSERT(reconnect_delay(1000) == 10s);
    }

    void urls() {
        auto u = RedisUrl::parse("redis://127.0.0.1:6390/2");
        CPPUNIT_ASSERT(!u.tls);
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), u.host);
        CPPUNIT_ASSERT_EQUAL(6390, u.port);
        CPPUNIT_ASSERT_EQUAL(2, u.db);
        auto t = RedisUrl::parse("rediss://[::1]");
        CPPUNIT_ASSERT(t.tls);
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), t.host);
        CPPUNIT_ASSERT_EQUAL(6379, t.port);
        CPPUNIT_ASSERT_EQUAL(std::string("rediss://[::1]:6379/0"), t.label());
        for (const char* bad : {"http://127.0.0.1", "redis://", "redis://127.0.0.1:x/0", "redis://127.0.0.1:6379/z",
                                "redis://user:pw@127.0.0.1:6379/0", "redis://127.0.0.1:70000/0"})
            CPPUNIT_ASSERT_THROW_MESSAGE(bad, RedisUrl::parse(bad), std::invalid_argument);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SharedStateTest);
