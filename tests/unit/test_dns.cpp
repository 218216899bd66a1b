// test_dns: the resolver against a private dnsmasq and a garbage server (rules without
// network: test_dns_rules.cpp).
#include "tests/unit/dns_fixtures.hpp"

using namespace dns_fixtures;

// ---- against dnsmasq -------------------------------------------------------

class DnsLookupTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DnsLookupTest);
    CPPUNIT_TEST(multi_mx_in_order);
    CPPUNIT_TEST(equal_preference_both_orders);
    CPPUNIT_TEST(implicit_mx);
    CPPUNIT_TEST(null_mx);
    CPPUNIT_TEST(nxdomain);
    CPPUNIT_TEST(timeout_is_retry);
    CPPUNIT_TEST(mx_target_timeout_is_retry);
    CPPUNIT_TEST(mx_target_without_address);
    CPPUNIT_TEST(cname_target);
    CPPUNIT_TEST(ipv6_addresses);
    CPPUNIT_TEST(truncated_answer_over_tcp);
    CPPUNIT_TEST(address_literals);
    CPPUNIT_TEST(relay_host);
    CPPUNIT_TEST(cache_hit);
    CPPUNIT_TEST(parallel_lookups);
    CPPUNIT_TEST(shutdown_ends_lookups);
    CPPUNIT_TEST(abandoned_lookups);
    CPPUNIT_TEST(malformed_answer_is_retry);
    CPPUNIT_TEST(garbage_server_never_crashes);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override { dns_ = std::make_unique<Dnsmasq>(); }
    void tearDown() override { dns_.reset(); }

    MxResult mx(const std::string& domain, std::chrono::milliseconds timeout = 1000ms) {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, timeout);
        return run(io, resolver.mx_lookup(domain));
    }

    void multi_mx_in_order() {
        MxResult r = mx("Multi.Test.");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((names(r) == std::vector<std::string>{"mx1.multi.test", "mx2.multi.test", "mx3.multi.test"}));
        CPPUNIT_ASSERT_EQUAL(10, r.hosts[0].preference);
        CPPUNIT_ASSERT((addresses(r.hosts[1]) == std::set<std::string>{"127.0.0.12"}));
        CPPUNIT_ASSERT(!r.implicit);
        CPPUNIT_ASSERT_EQUAL(std::string("mx1.multi.test,mx2.multi.test,mx3.multi.test"), r.destination_key());
    }

    // Fresh lookups and cache hits alike are shuffled.
    void equal_preference_both_orders() {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, 1000ms);
        std::set<std::string> firsts;
        for (int i = 0; i < 40; ++i) {
            MxResult r = run(io, resolver.mx_lookup("equal.test"));
            CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok && r.hosts.size() == 2);
            firsts.insert(r.hosts[0].name);
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), firsts.size());
    }

    void implicit_mx() {
        MxResult r = mx("nomx.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok && r.implicit);
        CPPUNIT_ASSERT((names(r) == std::vector<std::string>{"nomx.test"}));
        CPPUNIT_ASSERT_EQUAL(0, r.hosts[0].preference);
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.41"}));
    }

    void null_mx() {
        MxResult r = mx("nullmx.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::null_mx);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.10"), r.dsn);
        CPPUNIT_ASSERT(r.hosts.empty());
        CPPUNIT_ASSERT(r.error.find("nullmx.test") != std::string::npos);
    }

    void nxdomain() {
        MxResult r = mx("nxdomain.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::not_found);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.2"), r.dsn);
        CPPUNIT_ASSERT_EQUAL(std::string("Host or domain name not found. Name service error for "
                                         "name=nxdomain.test type=MX: Host not found"),
                             r.error);
    }

    // 200 ms per try, 2 tries: c-ares 1.18 doubles the second, 600 ms in all.
    void timeout_is_retry() {
        auto start = Clock::now();
        MxResult r = mx("timeout.test", 200ms);
        auto elapsed = Clock::now() - start;
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
        CPPUNIT_ASSERT_EQUAL(std::string("4.4.3"), r.dsn);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("try again") != std::string::npos);
        CPPUNIT_ASSERT(elapsed >= 200ms && elapsed < 1500ms);
    }

    void mx_target_timeout_is_retry() {
        MxResult r = mx("slowmx.test", 200ms);
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
        CPPUNIT_ASSERT(r.error.find("mx.timeout.test") != std::string::npos);
    }

    void mx_target_without_address() {
        MxResult r = mx("dead.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::fail);
        CPPUNIT_ASSERT_EQUAL(std::string("5.4.4"), r.dsn);
        CPPUNIT_ASSERT(r.error.find("nowhere.dead.test") != std::string::npos);
        r = mx("partial.test");  // the better MX has no address: skipped
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((names(r) == std::vector<std::string>{"mx.partial.test"}));
    }

    void cname_target() {
        MxResult r = mx("cname.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((names(r) == std::vector<std::string>{"alias.cname.test"}));
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.11"}));
    }

    void ipv6_addresses() {
        MxResult r = mx("six.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"::1"}));
        r = mx("dual.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.61", "::1"}));
    }

    void truncated_answer_over_tcp() {
        MxResult r = mx("big.test");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT_EQUAL(std::size_t(30), r.hosts.size());
        for (std::size_t i = 0; i < r.hosts.size(); ++i) {
            CPPUNIT_ASSERT_EQUAL(10 + static_cast<int>(i), r.hosts[i].preference);
            CPPUNIT_ASSERT_EQUAL(std::string("127.0.1.") + std::to_string(i + 1),
                                 r.hosts[i].addresses.at(0).to_string());
        }
        CPPUNIT_ASSERT_EQUAL(2, dns_->count("query[MX] big.test "));  // UDP (truncated), then TCP
    }

    void address_literals() {
        int before = dns_->count("query[");
        MxResult r = mx("[127.0.0.1]");
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.1"}));
        r = mx("[IPv6:::1]");
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"::1"}));
        CPPUNIT_ASSERT_EQUAL(before + 1, dns_->count("query["));  // only count()'s own marker
    }

    void relay_host() {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, 1000ms);
        MxResult r = run(io, resolver.host_lookup("[mail.example.test]"));
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::ok);
        CPPUNIT_ASSERT((names(r) == std::vector<std::string>{"mail.example.test"}));
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.31"}));
        r = run(io, resolver.host_lookup("127.0.0.1"));
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"127.0.0.1"}));
        r = run(io, resolver.host_lookup("[::1]"));
        CPPUNIT_ASSERT((addresses(r.hosts[0]) == std::set<std::string>{"::1"}));
        r = run(io, resolver.host_lookup("[nowhere.test]"));
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::not_found);
    }

    void cache_hit() {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, 1000ms);
        MxResult first = run(io, resolver.mx_lookup("multi.test"));
        MxResult second = run(io, resolver.mx_lookup("multi.test"));
        CPPUNIT_ASSERT(first.status == Status::ok && second.status == Status::ok);
        CPPUNIT_ASSERT(names(first) == names(second));
        CPPUNIT_ASSERT_EQUAL(1, dns_->count("query[MX] multi.test "));
        CPPUNIT_ASSERT_EQUAL(1, dns_->count("query[A] mx1.multi.test "));
        run(io, resolver.mx_lookup("nxdomain.test"));  // negative answers are kept briefly too
        run(io, resolver.mx_lookup("nxdomain.test"));
        CPPUNIT_ASSERT_EQUAL(1, dns_->count("query[MX] nxdomain.test "));
        run(io, resolver.mx_lookup("timeout.test"));   // temporary failures are not
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), resolver.cache().size());
    }

    // Many lookups at once from several coroutines on two threads, some on a
    // strand of their own: all arrive, each with its own answer, and the
    // concurrent askers of one domain share one query.
    void parallel_lookups() {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, 1000ms);
        const std::vector<std::pair<std::string, Status>> cases = {
            {"multi.test", Status::ok},       {"equal.test", Status::ok},   {"nomx.test", Status::ok},
            {"nullmx.test", Status::null_mx}, {"dead.test", Status::fail},  {"nxdomain.test", Status::not_found},
            {"cname.test", Status::ok},       {"dual.test", Status::ok}};
        std::vector<std::future<MxResult>> futures;
        for (int round = 0; round < 5; ++round)
            for (const auto& c : cases) {
                auto ex = round % 2 ? asio::any_io_executor(asio::make_strand(io)) : asio::any_io_executor(io.get_executor());
                futures.push_back(asio::co_spawn(ex, resolver.mx_lookup(c.first), asio::use_future));
            }
        run(io, []() -> asio::awaitable<int> { co_return 0; }());  // until all are done
        CPPUNIT_ASSERT_EQUAL(1, dns_->count("query[MX] multi.test "));  // the five shared one query
        for (std::size_t i = 0; i < futures.size(); ++i) {
            MxResult r = futures[i].get();
            CPPUNIT_ASSERT_MESSAGE(cases[i % cases.size()].first + ": " + describe(r),
                                   r.status == cases[i % cases.size()].second);
        }
    }

    void shutdown_ends_lookups() {
        asio::io_context io;
        Resolver resolver(io, {dns_->server()}, 5000ms);
        auto stopper = [&]() -> asio::awaitable<void> {
            asio::steady_timer t(io, 100ms);
            co_await t.async_wait(asio::use_awaitable);
            resolver.shutdown();
        };
        asio::co_spawn(io, stopper(), asio::detached);
        auto start = Clock::now();
        MxResult r = run(io, resolver.mx_lookup("timeout.test"), 3s);
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
        CPPUNIT_ASSERT(Clock::now() - start < 2s);
        r = run(io, resolver.mx_lookup("multi.test"));  // after shutdown: retry at once
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
    }

    // The process gives up with lookups in flight: the resolver goes first,
    // then the io_context with the waits and coroutines it still holds.
    // Nothing may leak, crash or touch freed memory (run under sanitizers).
    void abandoned_lookups() {
        // Each lookup's coroutine frame holds a copy of `frames`: the frames
        // are freed exactly when no copy is left.
        auto frames = std::make_shared<int>(0);
        std::weak_ptr<int> watch = frames;
        bool timeout_done = false;
        {
            asio::io_context io;
            auto resolver = std::make_unique<Resolver>(io, std::vector<std::string>{dns_->server()}, 5000ms);
            auto lookup = [&resolver](std::string domain, std::shared_ptr<int>) -> asio::awaitable<MxResult> {
                co_return co_await resolver->mx_lookup(std::move(domain));
            };
            asio::co_spawn(io, lookup("timeout.test", frames),
                           [&](std::exception_ptr, MxResult) { timeout_done = true; });
            asio::co_spawn(io, lookup("multi.test", frames), asio::detached);
            frames.reset();
            io.run_for(50ms);
            // The query to the silent server is still waiting: it is abandoned in flight.
            CPPUNIT_ASSERT(!timeout_done);
            CPPUNIT_ASSERT(!watch.expired());
            resolver.reset();
        }
        // The io_context took the waiting coroutines with it: none leaked (no
        // cycle between a frame and the channel).
        CPPUNIT_ASSERT(watch.expired());
    }

    // A reply whose one answer record runs past the end of the message.
    void malformed_answer_is_retry() {
        GarbageServer server([](std::vector<unsigned char> q) {
            return response_to(std::move(q), {0xC0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 200, 0, 10, 3, 'm'});
        });
        asio::io_context io;
        Resolver resolver(io, {server.server()}, 300ms);
        MxResult r = run(io, resolver.mx_lookup("example.test"));
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
        CPPUNIT_ASSERT_MESSAGE(r.error, r.error.find("malformed DNS reply") != std::string::npos);
        r = run(io, resolver.host_lookup("mail.example.test"));
        CPPUNIT_ASSERT_MESSAGE(describe(r), r.status == Status::retry);
    }

    // Random bytes after an echoed question, and replies too short for a
    // header: every lookup ends (within the timeouts) without a crash.
    void garbage_server_never_crashes() {
        std::mutex mutex;
        std::mt19937 random(4711);
        GarbageServer server([&](std::vector<unsigned char> q) {
            std::lock_guard lock(mutex);
            if (random() % 5 == 0) return std::vector<unsigned char>(q.begin(), q.begin() + random() % 12);
            std::vector<unsigned char> tail(random() % 80);
            for (auto& b : tail) b = static_cast<unsigned char>(random());
            return response_to(std::move(q), tail, static_cast<unsigned char>(1 + random() % 3));
        });
        asio::io_context io;
        Resolver resolver(io, {server.server()}, 100ms, 1);
        for (int i = 0; i < 30; ++i) {
            MxResult r = run(io, resolver.mx_lookup("g" + std::to_string(i) + ".test"));
            CPPUNIT_ASSERT_MESSAGE(describe(r), r.status != Status::not_found && r.status != Status::null_mx);
        }
    }

private:
    std::unique_ptr<Dnsmasq> dns_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(DnsLookupTest);
