// test_shared_leases: destination_concurrency across hosts (leases granted, given back, renewed, expired; Redis away), on a double.
#include <cppunit/extensions/HelperMacros.h>

#include <map>

#include "qrunner/shared_leases.hpp"

using namespace mxlane::qrunner;
using namespace std::chrono_literals;
using Clock = SharedState::Clock;

namespace {

// A double of the Redis side, because a real server's clock cannot be moved
// past a lease's expiry in a unit test, nor made to skip one answer: the
// sorted sets are maps from member to expiry on a clock the test moves, and
// the double does what the scripts do. `up` false answers nothing. The scripts
// themselves run against a real redis-server in tests/integration/qrunner_leases.sh.
struct Redis {
    Clock::time_point now = Clock::time_point{} + 1000h;
    bool up = true;
    std::map<std::string, std::map<std::string, std::int64_t>> sets;  // name -> member -> expiry ms
    std::int64_t ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    }
    void drop_expired(const std::string& name) {
        std::erase_if(sets[name], [&](const auto& m) { return m.second <= ms(); });
    }
    int live(const std::string& name) {
        drop_expired(name);
        return static_cast<int>(sets[name].size());
    }
};

// Heartbeats only: what makes SharedState share (its buckets are test_shared_state's).
class Beats final : public SharedBackend {
public:
    explicit Beats(Redis& r) : r_(r) {}
    void take(const std::string&, double, double, std::function<void(std::optional<Take>)> done) override {
        done({});
    }
    void heartbeat(const std::string& host, const std::string&,
                   std::function<void(std::optional<std::vector<HostRow>>)> done) override {
        if (!r_.up) return done({});
        done(std::vector<HostRow>{HostRow{host, r_.ms(), {}}});
    }

private:
    Redis& r_;
};

class Leases final : public LeaseBackend {
public:
    explicit Leases(Redis& r) : r_(r) {}
    void lease(const std::string& name, const std::string& member, int limit,
               std::function<void(std::optional<bool>)> done) override {
        if (!r_.up) return done({});
        if (r_.live(name) >= limit) return done(false);
        r_.sets[name][member] = r_.ms() + SharedState::kHostTimeoutMs;
        done(true);
    }
    void release(const std::string& name, const std::string& member) override {
        if (r_.up) r_.sets[name].erase(member);
    }
    void refresh(const std::map<std::string, std::vector<std::string>>& held, std::function<void(bool)> done) override {
        if (!r_.up) return done(false);
        for (const auto& [name, members] : held) {
            r_.drop_expired(name);
            for (const auto& m : members) r_.sets[name][m] = r_.ms() + SharedState::kHostTimeoutMs;
        }
        done(true);
    }

private:
    Redis& r_;
};

struct Host {
    Host(Redis& r, const std::string& name)
        : state(std::make_unique<Beats>(r), name, "redis://127.0.0.1:6379/0", 2),
          leases(std::make_unique<Leases>(r), state, name) {
        leases.on_wake([this] { ++wakes; });
    }
    SharedState state;
    SharedLeases leases;
    int wakes = 0;
    int open = 0;
    // Opens a connection to d.test (limit 2) if a lease lets it: asks, and looks again once answered.
    bool try_open(Clock::time_point now) {
        if (leases.ready_at("d.test", 2, now) > now && leases.ready_at("d.test", 2, now) > now) return false;
        leases.opened("d.test");
        ++open;
        return true;
    }
    void close() {
        leases.closed("d.test");
        --open;
    }
};

}  // namespace

class SharedLeasesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SharedLeasesTest);
    CPPUNIT_TEST(two_hosts_share_the_limit);
    CPPUNIT_TEST(a_dead_hosts_leases_expire);
    CPPUNIT_TEST(an_unused_lease_goes_back);
    CPPUNIT_TEST(redis_away_no_leases_then_counted_again);
    CPPUNIT_TEST_SUITE_END();

public:
    void two_hosts_share_the_limit() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test");
        a.state.beat({});
        b.state.beat({});
        CPPUNIT_ASSERT(a.try_open(r.now) && a.try_open(r.now));
        CPPUNIT_ASSERT_EQUAL(2, a.wakes);  // each answer woke the scheduler
        CPPUNIT_ASSERT(!a.try_open(r.now));  // its own limit would allow it no more either: the lease says no
        CPPUNIT_ASSERT(!b.try_open(r.now));
        CPPUNIT_ASSERT_EQUAL(2, r.live("d.test"));
        // Refused: b asks again kRetry later, not at every look before.
        CPPUNIT_ASSERT(b.leases.ready_at("d.test", 2, r.now) == r.now + SharedLeases::kRetry);
        a.close();
        CPPUNIT_ASSERT_EQUAL(1, r.live("d.test"));
        CPPUNIT_ASSERT(!b.try_open(r.now + 100ms));
        r.now += SharedLeases::kRetry;
        CPPUNIT_ASSERT(b.try_open(r.now));
        CPPUNIT_ASSERT(!b.try_open(r.now + SharedLeases::kRetry));
        CPPUNIT_ASSERT_EQUAL(1, b.leases.held("d.test"));
        CPPUNIT_ASSERT_EQUAL(1, a.leases.held("d.test"));
    }

    void a_dead_hosts_leases_expire() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test");
        a.state.beat({});
        b.state.beat({});
        CPPUNIT_ASSERT(a.try_open(r.now) && a.try_open(r.now));
        // Alive, a renews every second: its leases hold however long its connections last.
        const auto start = r.now;
        for (; r.now < start + 30s; r.now += 1s) {
            a.leases.renew();
            b.leases.renew();
            CPPUNIT_ASSERT(!b.try_open(r.now));
        }
        // a dies: nothing renews its leases; b gets nothing until they expire, then the whole limit.
        const auto died = r.now;
        int waited = 0;
        for (; b.open < 2 && r.now < died + 20s; r.now += 1s, ++waited) {
            b.leases.renew();
            while (b.try_open(r.now)) {}
        }
        CPPUNIT_ASSERT_EQUAL(2, b.open);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(waited), waited >= 9 && waited <= 11);
        CPPUNIT_ASSERT_EQUAL(2, r.live("d.test"));
        for (const auto& [member, expiry] : r.sets["d.test"])
            CPPUNIT_ASSERT_MESSAGE(member, member.starts_with("b.test:"));
    }

    void an_unused_lease_goes_back() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test");
        a.state.beat({});
        b.state.beat({});
        CPPUNIT_ASSERT(a.try_open(r.now));
        a.leases.ready_at("d.test", 2, r.now);  // granted, then its destination finds no use for it
        CPPUNIT_ASSERT_EQUAL(2, r.live("d.test"));
        a.leases.renew();  // kept once (a connection may be about to open)...
        CPPUNIT_ASSERT_EQUAL(2, r.live("d.test"));
        a.leases.renew();  // ...not twice
        CPPUNIT_ASSERT_EQUAL(1, r.live("d.test"));
        CPPUNIT_ASSERT(b.try_open(r.now));
        CPPUNIT_ASSERT_EQUAL(1, a.leases.held("d.test"));
    }

    void redis_away_no_leases_then_counted_again() {
        Redis r;
        Host a(r, "a.test"), b(r, "b.test");
        // Before the first heartbeat, and while Redis is away: nothing asked, the share decides.
        CPPUNIT_ASSERT(a.leases.ready_at("d.test", 2, r.now) == r.now);
        CPPUNIT_ASSERT(r.sets.empty());
        a.state.beat({});
        b.state.beat({});
        CPPUNIT_ASSERT_EQUAL(1, a.state.divisor());
        // A lease request that gets no answer: Redis away, each host at its share at once.
        r.up = false;
        CPPUNIT_ASSERT(a.leases.ready_at("d.test", 2, r.now) > r.now);
        CPPUNIT_ASSERT(!a.state.sharing());
        CPPUNIT_ASSERT_EQUAL(2, a.state.divisor());
        CPPUNIT_ASSERT(a.try_open(r.now));  // no lease needed (the scheduler keeps it to 2/2 = 1)
        b.state.beat({});
        CPPUNIT_ASSERT(b.try_open(r.now));
        // Back (restarted empty): the first renewal gives Redis the connections opened meanwhile.
        r.up = true;
        r.sets.clear();
        a.state.beat({});
        b.state.beat({});
        CPPUNIT_ASSERT(a.state.sharing() && b.state.sharing());
        a.leases.renew();
        b.leases.renew();
        CPPUNIT_ASSERT_EQUAL(2, r.live("d.test"));
        CPPUNIT_ASSERT(!a.try_open(r.now) && !b.try_open(r.now));
        a.close();
        r.now += SharedLeases::kRetry;
        CPPUNIT_ASSERT(b.try_open(r.now));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SharedLeasesTest);
