// test_shared_warmup: warm-up counts across hosts (one cap for both, first day kept, give-back, fallback to a share) against a Redis double.
#include <cppunit/extensions/HelperMacros.h>

#include <map>

#include "qrunner/shared_warmup.hpp"

using namespace mxlane::qrunner;

namespace {

constexpr std::int64_t kToday = 20000;

// A double of the Redis side, because a real server cannot be made to skip
// an answer at a chosen moment: the same arithmetic as the Lua step (first
// day set once, count checked against the cap and raised in one step); `up`
// false answers nothing, as a Redis that is down or too slow. The scripts
// themselves run against a real redis-server in tests/integration/qrunner_shared_warmup.sh.
struct Redis {
    bool up = true;
    std::map<std::string, std::int64_t> values;
};

class Double final : public WarmupBackend {
public:
    explicit Double(Redis& r) : r_(r) {}
    void reserve(const std::string& address, const std::string& provider, std::int64_t today, std::int64_t first_day,
                 std::int64_t n, const std::vector<std::int64_t>& caps,
                 std::function<void(std::optional<Reserved>)> done) override {
        if (!r_.up) return done({});
        const std::int64_t first = r_.values.try_emplace(warmup_first_key(address), first_day).first->second;
        const auto day = static_cast<std::size_t>(std::max<std::int64_t>(1, today - first + 1));
        const std::int64_t cap = caps[std::min(day, caps.size()) - 1];
        std::int64_t& sent = r_.values[warmup_count_key(address, provider, today)];
        const std::int64_t granted = std::max<std::int64_t>(0, std::min(n, cap - sent));
        sent += granted;
        done(Reserved{granted, sent, first});
    }
    void give_back(const std::string& address, const std::string& provider, std::int64_t today,
                   std::int64_t n) override {
        if (!r_.up) return;
        std::int64_t& sent = r_.values[warmup_count_key(address, provider, today)];
        sent -= std::min(sent, n);
    }

private:
    Redis& r_;
};

SharedWarmup::Ask ask(std::int64_t n, std::map<std::string, std::int64_t> first_days, int hosts = 2) {
    SharedWarmup::Ask a;
    a.provider = "mx:.ms.test";
    a.today = kToday;
    a.n = n;
    a.caps = {10, 50};
    a.first_days = std::move(first_days);
    a.hosts = hosts;
    return a;
}

// The double answers at once; a real backend answers later, on the event loop.
WarmupAllowance reserve(SharedWarmup& w, SharedWarmup::Ask a) {
    WarmupAllowance got;
    bool called = false;
    w.reserve(std::move(a), [&](WarmupAllowance x) {
        got = std::move(x);
        called = true;
    });
    CPPUNIT_ASSERT(called);
    return got;
}

}  // namespace

class SharedWarmupTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SharedWarmupTest);
    CPPUNIT_TEST(two_hosts_one_cap);
    CPPUNIT_TEST(first_day_is_shared);
    CPPUNIT_TEST(unused_goes_back);
    CPPUNIT_TEST(redis_away_each_host_its_share);
    CPPUNIT_TEST(keys);
    CPPUNIT_TEST_SUITE_END();

public:
    // Host a asks for 7, host b for 7, with a cap of 10 on day 1: 7 and 3.
    void two_hosts_one_cap() {
        Redis r;
        SharedWarmup a(std::make_unique<Double>(r), "redis"), b(std::make_unique<Double>(r), "redis");
        auto got_a = reserve(a, ask(7, {{"127.0.0.2", kToday}}));
        auto got_b = reserve(b, ask(7, {{"127.0.0.2", kToday}}));
        CPPUNIT_ASSERT(got_a.shared && got_b.shared);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7), allowance_room(got_a, "127.0.0.2", 10, 10));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), allowance_room(got_b, "127.0.0.2", 10, 10));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), got_b.by_address.at("127.0.0.2").sent);
        // An address the batch did not reserve has no room.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), allowance_room(got_b, "127.0.0.3", 10, 10));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), allowance_room(reserve(a, ask(1, {{"127.0.0.2", kToday}})), "127.0.0.2", 10, 10));
    }

    // Host a first used the address 3 days ago (day 4: cap 50); host b, new,
    // offers today and gets a's first day and a's cap: its warm-up goes on.
    void first_day_is_shared() {
        Redis r;
        SharedWarmup a(std::make_unique<Double>(r), "redis"), b(std::make_unique<Double>(r), "redis");
        reserve(a, ask(1, {{"127.0.0.2", kToday - 3}}));
        auto got = reserve(b, ask(60, {{"127.0.0.2", kToday}}));
        CPPUNIT_ASSERT_EQUAL(kToday - 3, got.by_address.at("127.0.0.2").first_day);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(49), got.by_address.at("127.0.0.2").granted);
    }

    // A batch reserves its size from each address of its pool, uses part of it
    // and gives back the rest, so that the other host can use it.
    void unused_goes_back() {
        Redis r;
        SharedWarmup a(std::make_unique<Double>(r), "redis"), b(std::make_unique<Double>(r), "redis");
        auto got = reserve(a, ask(8, {{"127.0.0.2", kToday}, {"127.0.0.3", kToday}}));
        got.used["127.0.0.2"] = 4;
        got.used["127.0.0.3"] = 4;
        CPPUNIT_ASSERT_EQUAL(std::int64_t(4), allowance_room(got, "127.0.0.2", 10, 10));
        a.give_back(got, "mx:.ms.test", kToday);
        auto other = reserve(b, ask(10, {{"127.0.0.2", kToday}}));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(6), other.by_address.at("127.0.0.2").granted);
    }

    // Redis away: not shared; each host gets cap / hosts, less what it sent itself.
    // Away for one address of two: nothing is shared, and what was granted goes back.
    void redis_away_each_host_its_share() {
        Redis r;
        r.up = false;
        SharedWarmup a(std::make_unique<Double>(r), "redis");
        auto got = reserve(a, ask(7, {{"127.0.0.2", kToday}}, 2));
        CPPUNIT_ASSERT(!got.shared);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5), allowance_room(got, "127.0.0.2", 10, 10));  // 10 / 2 hosts
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), allowance_room(got, "127.0.0.2", 7, 10));   // this host sent 3
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), allowance_room(got, "127.0.0.2", 4, 10));
        CPPUNIT_ASSERT_EQUAL(kNoCap, allowance_room(got, "127.0.0.2", kNoCap, kNoCap));

        class Half final : public WarmupBackend {  // answers for 127.0.0.2 only
        public:
            explicit Half(Redis& r) : inner(r) {}
            void reserve(const std::string& address, const std::string& provider, std::int64_t today,
                         std::int64_t first, std::int64_t n, const std::vector<std::int64_t>& caps,
                         std::function<void(std::optional<Reserved>)> done) override {
                if (address != "127.0.0.2") return done({});
                inner.reserve(address, provider, today, first, n, caps, std::move(done));
            }
            void give_back(const std::string& address, const std::string& provider, std::int64_t today,
                           std::int64_t n) override {
                inner.give_back(address, provider, today, n);
            }
            Double inner;
        };
        r.up = true;
        SharedWarmup h(std::make_unique<Half>(r), "redis");
        got = reserve(h, ask(7, {{"127.0.0.2", kToday}, {"127.0.0.3", kToday}}));
        CPPUNIT_ASSERT(!got.shared);
        CPPUNIT_ASSERT(got.by_address.empty());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), r.values[warmup_count_key("127.0.0.2", "mx:.ms.test", kToday)]);
    }

    void keys() {
        CPPUNIT_ASSERT_EQUAL(std::string("mxlane:warmup:127.0.0.2:mx:.ms.test:20241004"),
                             warmup_count_key("127.0.0.2", "mx:.ms.test", 20000));
        CPPUNIT_ASSERT_EQUAL(std::string("mxlane:warmup-first:::1"), warmup_first_key("::1"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SharedWarmupTest);
