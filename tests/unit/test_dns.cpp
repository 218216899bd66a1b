// test_dns: MX rules without network, then the resolver against a private dnsmasq and a garbage server.
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/dns/resolver.hpp"
#include "tests/unit/temp_dir.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

using namespace mxlane::dns;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

MxHost host(std::string name, int preference) { return MxHost{std::move(name), preference, {}}; }

std::vector<std::string> names(const MxResult& r) {
    std::vector<std::string> out;
    for (const MxHost& h : r.hosts) out.push_back(h.name);
    return out;
}

std::set<std::string> addresses(const MxHost& h) {
    std::set<std::string> out;
    for (const auto& a : h.addresses) out.insert(a.to_string());
    return out;
}

std::string describe(const MxResult& r) {
    std::ostringstream out;
    out << to_string(r.status) << " dsn=" << r.dsn << " error=" << r.error << " hosts=";
    for (const MxHost& h : r.hosts) out << h.name << "/" << h.preference << " ";
    return out.str();
}

// A DNS query message (RFC 1035 4.1) for the probes and the fake server.
std::vector<unsigned char> query_packet(const std::string& name, int type, std::uint16_t id) {
    std::vector<unsigned char> p = {static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id), 1, 0, 0, 1,
                                    0, 0, 0, 0, 0, 0};
    std::istringstream labels(name);
    for (std::string label; std::getline(labels, label, '.');) {
        p.push_back(static_cast<unsigned char>(label.size()));
        p.insert(p.end(), label.begin(), label.end());
    }
    p.insert(p.end(), {0, 0, static_cast<unsigned char>(type), 0, 1});
    return p;
}

int udp_socket(int port = 0) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("cannot bind a loopback UDP socket");
    return fd;
}

int port_of(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

// A loopback port free for UDP and TCP (dnsmasq binds both).
int free_port() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        int u = udp_socket();
        int port = port_of(u);
        int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<std::uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
        ::close(t);
        ::close(u);
        if (ok) return port;
    }
    throw std::runtime_error("no free loopback port");
}

// Sends one query to 127.0.0.1:port and waits up to wait for any reply.
bool probe(int port, const std::string& name, std::chrono::milliseconds wait) {
    int fd = udp_socket();
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto q = query_packet(name, ns_t_a, 0x4242);
    ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{fd, POLLIN, 0};
    bool answered = ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
    ::close(fd);
    return answered;
}

// Runs task on io with two threads until io runs out of work. A resolver
// that leaves a wait or a timer behind would keep run() from returning: the
// watchdog stops io and the test fails.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task, std::chrono::milliseconds limit = 10s) {
    auto future = asio::co_spawn(io, std::move(task), asio::use_future);
    io.restart();
    std::atomic<bool> finished{false}, stopped{false};
    std::thread watchdog([&] {
        for (auto until = Clock::now() + limit; !finished && Clock::now() < until;) std::this_thread::sleep_for(5ms);
        if (!finished) {
            stopped = true;
            io.stop();
        }
    });
    std::thread helper([&] { io.run(); });
    io.run();
    helper.join();
    finished = true;
    watchdog.join();
    CPPUNIT_ASSERT_MESSAGE("io_context.run() did not return: the resolver left work behind", !stopped);
    return future.get();
}

const char* const records = R"(
mx-host=multi.test,mx1.multi.test,10
mx-host=multi.test,mx3.multi.test,30
mx-host=multi.test,mx2.multi.test,20
host-record=mx1.multi.test,127.0.0.11
host-record=mx2.multi.test,127.0.0.12
host-record=mx3.multi.test,127.0.0.13
mx-host=equal.test,mxa.equal.test,10
mx-host=equal.test,mxb.equal.test,10
host-record=mxa.equal.test,127.0.0.21
host-record=mxb.equal.test,127.0.0.22
mx-host=example.test,mail.example.test,5
host-record=mail.example.test,127.0.0.31
host-record=nomx.test,127.0.0.41
mx-host=nullmx.test,.,0
host-record=nullmx.test,127.0.0.51
mx-host=dead.test,nowhere.dead.test,10
mx-host=partial.test,nowhere.partial.test,5
mx-host=partial.test,mx.partial.test,10
host-record=mx.partial.test,127.0.0.71
mx-host=cname.test,alias.cname.test,10
cname=alias.cname.test,mx1.multi.test
mx-host=six.test,mx.six.test,10
host-record=mx.six.test,::1
mx-host=dual.test,mx.dual.test,10
host-record=mx.dual.test,127.0.0.61,::1
mx-host=slowmx.test,mx.timeout.test,10
)";

// A private dnsmasq on 127.0.0.1:<free port>, no upstream: names under .test
// it does not know are NXDOMAIN, and timeout.test goes to a socket that never
// answers. Stopped by pid.
class Dnsmasq {
public:
    static constexpr const char* binary = "/usr/sbin/dnsmasq";

    Dnsmasq() : port_(free_port()), black_hole_(udp_socket()) {
        if (::access(binary, X_OK) != 0)
            CPPUNIT_FAIL(std::string(binary) + " not found: the DNS tests need it (apt-get install dnsmasq-base)");
        std::ofstream(dir_.file("dnsmasq.conf")) << config();
        pid_ = ::fork();
        if (pid_ == 0) {
            std::FILE* log = std::freopen(dir_.file("dnsmasq.log").c_str(), "w", stderr);
            if (log) ::dup2(STDERR_FILENO, STDOUT_FILENO);
            std::string conf = dir_.file("dnsmasq.conf");
            // -k: stay in the foreground, so the pid is dnsmasq's; log to stderr.
            ::execl(binary, "dnsmasq", "-k", "--log-facility=-", "-C", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        wait_until_answering();
    }
    ~Dnsmasq() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(black_hole_);
    }

    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const {
        std::ifstream in(dir_.file("dnsmasq.log"));
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    // Log lines containing needle, once everything asked so far is logged.
    int count(const std::string& needle) {
        std::string marker = "marker" + std::to_string(++markers_) + ".test";
        CPPUNIT_ASSERT(probe(port_, marker, 2000ms));
        for (auto until = Clock::now() + 3s; log().find(marker) == std::string::npos && Clock::now() < until;)
            std::this_thread::sleep_for(10ms);
        std::istringstream lines(log());
        int n = 0;
        for (std::string line; std::getline(lines, line);) n += line.find(needle) != std::string::npos;
        return n;
    }

private:
    std::string config() const {
        std::ostringstream c;
        c << "port=" << port_ << "\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\n"
          << "no-negcache\nlocal=/test/\ncache-size=0\nlocal-ttl=60\nlog-queries\n"
          << (::geteuid() == 0 ? "user=nobody\ngroup=nogroup\n" : "")
          << "server=/timeout.test/127.0.0.1#" << port_of(black_hole_) << "\n"
          << records;
        // big.test: an MX set too large for 512 bytes of UDP, so c-ares asks again over TCP.
        for (int i = 0; i < 30; ++i) {
            std::string name = "mx-number-" + std::to_string(i) + "-with-a-long-name.big.test";
            c << "mx-host=big.test," << name << "," << 10 + i << "\nhost-record=" << name << ",127.0.1." << i + 1
              << "\n";
        }
        return c.str();
    }
    void wait_until_answering() {
        for (auto until = Clock::now() + 5s; Clock::now() < until;) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                CPPUNIT_FAIL("dnsmasq exited at start: " + log());
            }
            if (probe(port_, "ready.test", 100ms)) return;
        }
        CPPUNIT_FAIL("dnsmasq does not answer on " + server() + ": " + log());
    }

    mxlane::test::TempDir dir_;
    int port_;
    int black_hole_;
    pid_t pid_ = -1;
    int markers_ = 0;
};

// A DNS server that answers every query with the question echoed and then
// garbage: what a broken or hostile server might send.
class GarbageServer {
public:
    explicit GarbageServer(std::function<std::vector<unsigned char>(std::vector<unsigned char>)> reply)
        : fd_(udp_socket()), reply_(std::move(reply)), thread_([this] { serve(); }) {}
    ~GarbageServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_of(fd_)); }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) != 1) continue;
            unsigned char buf[512];
            sockaddr_in from{};
            socklen_t len = sizeof from;
            ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n <= 12) continue;
            auto out = reply_(std::vector<unsigned char>(buf, buf + n));
            ::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
    }
    int fd_;
    std::function<std::vector<unsigned char>(std::vector<unsigned char>)> reply_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The query turned into a NOERROR response claiming `answers` records,
// followed by `tail`.
std::vector<unsigned char> response_to(std::vector<unsigned char> query, const std::vector<unsigned char>& tail,
                                       unsigned char answers = 1) {
    query[2] |= 0x80;  // QR
    query[3] = 0x80;   // RA, NOERROR
    query[7] = answers;
    query.insert(query.end(), tail.begin(), tail.end());
    return query;
}

}  // namespace

// ---- rules, no network -----------------------------------------------------

class DnsRulesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DnsRulesTest);
    CPPUNIT_TEST(preference_order);
    CPPUNIT_TEST(equal_preferences_shuffled);
    CPPUNIT_TEST(destination_key);
    CPPUNIT_TEST(classification);
    CPPUNIT_TEST(literals_and_names);
    CPPUNIT_TEST(null_mx_rule);
    CPPUNIT_TEST(cache_expiry);
    CPPUNIT_TEST(answer_ttls);
    CPPUNIT_TEST(garbage_packets_do_not_crash);
    CPPUNIT_TEST(bad_server_list);
    CPPUNIT_TEST_SUITE_END();

public:
    void preference_order() {
        std::mt19937 random(1);
        std::vector<MxHost> hosts = {host("c", 30), host("a", 10), host("d", 5), host("b", 20)};
        order_by_preference(hosts, random);
        std::vector<int> prefs;
        for (const MxHost& h : hosts) prefs.push_back(h.preference);
        CPPUNIT_ASSERT((prefs == std::vector<int>{5, 10, 20, 30}));
    }

    void equal_preferences_shuffled() {
        std::mt19937 random(7);
        std::set<std::string> orders;
        for (int i = 0; i < 100; ++i) {
            std::vector<MxHost> hosts = {host("x", 20), host("a", 10), host("b", 10), host("c", 10)};
            order_by_preference(hosts, random);
            CPPUNIT_ASSERT_EQUAL(std::string("x"), hosts[3].name);
            orders.insert(hosts[0].name + hosts[1].name + hosts[2].name);
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), orders.size());  // all permutations of a, b, c
    }

    void destination_key() {
        MxResult one, two;
        one.hosts = {host("mx2.example.test", 20), host("mx1.example.test", 10)};
        two.hosts = {host("mx1.example.test", 5), host("mx2.example.test", 5)};
        CPPUNIT_ASSERT_EQUAL(std::string("mx1.example.test,mx2.example.test"), one.destination_key());
        CPPUNIT_ASSERT_EQUAL(one.destination_key(), two.destination_key());
        two.hosts.push_back(host("mx3.example.test", 5));
        CPPUNIT_ASSERT(one.destination_key() != two.destination_key());
        CPPUNIT_ASSERT_EQUAL(std::string(), MxResult{}.destination_key());
    }

    void classification() {
        CPPUNIT_ASSERT(classify(ARES_SUCCESS) == Reply::answer);
        CPPUNIT_ASSERT(classify(ARES_ENODATA) == Reply::no_data);
        CPPUNIT_ASSERT(classify(ARES_ENOTFOUND) == Reply::no_domain);
        CPPUNIT_ASSERT(classify(ARES_EBADNAME) == Reply::bad_name);
        for (int temporary : {ARES_ESERVFAIL, ARES_ETIMEOUT, ARES_EREFUSED, ARES_ECONNREFUSED, ARES_EBADRESP,
                              ARES_EFORMERR, ARES_ENOMEM, ARES_ECANCELLED, ARES_EDESTRUCTION, ARES_ENOTIMP})
            CPPUNIT_ASSERT(classify(temporary) == Reply::temporary);
        MxResult r = failure(Status::not_found, "5.1.2", "x.test", "MX", "Host not found");
        CPPUNIT_ASSERT_EQUAL(
            std::string("Host or domain name not found. Name service error for name=x.test type=MX: Host not found"),
            r.error);
        CPPUNIT_ASSERT_EQUAL(std::string("not_found"), std::string(to_string(r.status)));
    }

    void literals_and_names() {
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), address_literal("[127.0.0.1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[IPv6:::1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[ipv6:::1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[::1]")->to_string());
        CPPUNIT_ASSERT(!address_literal("example.test"));
        CPPUNIT_ASSERT(!address_literal("[example.test]"));
        CPPUNIT_ASSERT(!address_literal("[IPv6:127.0.0.1]"));
        CPPUNIT_ASSERT(!address_literal("127.0.0.1"));
        CPPUNIT_ASSERT(!address_literal("[]"));
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), normalize_domain("Example.TEST."));
    }

    void null_mx_rule() {
        CPPUNIT_ASSERT(is_null_mx({host("", 0)}));
        CPPUNIT_ASSERT(is_null_mx({host(".", 0)}));
        CPPUNIT_ASSERT(!is_null_mx({host("", 0), host("mx.test", 10)}));  // RFC 7505 3: must stand alone
        CPPUNIT_ASSERT(!is_null_mx({host("mx.test", 0)}));
        CPPUNIT_ASSERT(!is_null_mx({}));
    }

    void cache_expiry() {
        MxCache cache(3);
        auto t0 = MxCache::Clock::now();
        MxResult r;
        r.status = Status::ok;
        r.hosts = {host("mx.test", 1)};
        cache.put("a", r, 10s, t0);
        cache.put("zero", r, 0s, t0);  // TTL 0: not kept
        CPPUNIT_ASSERT(cache.get("a", t0 + 9s));
        CPPUNIT_ASSERT(!cache.get("a", t0 + 10s));
        CPPUNIT_ASSERT(!cache.get("zero", t0));
        cache.put("b", r, 100s, t0);
        cache.put("c", r, 100s, t0);
        cache.put("d", r, 100s, t0 + 20s);  // full: the expired "a" makes room
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), cache.size());
        CPPUNIT_ASSERT(cache.get("d", t0 + 20s) && cache.get("b", t0 + 20s));
        cache.put("e", r, 100s, t0 + 20s);  // full of live entries: bounded anyway
        CPPUNIT_ASSERT(cache.size() <= 3);
        CPPUNIT_ASSERT(cache.get("e", t0 + 20s));
    }

    void answer_ttls() {
        // Question "t." MX; two MX answers (TTL 300 and 60) named by a pointer to the question.
        std::vector<unsigned char> q = query_packet("t", ns_t_mx, 1);
        std::vector<unsigned char> rr = {0xC0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 4, 0, 10, 0xC0, 12};
        std::vector<unsigned char> rr60 = rr;
        rr60[8] = 0;
        rr60[9] = 60;
        std::vector<unsigned char> tail = rr;
        tail.insert(tail.end(), rr60.begin(), rr60.end());
        Answer a{ARES_SUCCESS, response_to(q, tail, 2)};
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(60), a.min_ttl().value());
        CPPUNIT_ASSERT(!a.negative_ttl());
        // NXDOMAIN with an SOA (TTL 3600, MINIMUM 900) in the authority section.
        std::vector<unsigned char> soa = {0xC0, 12, 0, 6, 0, 1, 0, 0, 0x0E, 0x10, 0, 22, 1, 'n', 0, 1, 'h', 0,
                                          0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0x03, 0x84};
        Answer nx{ARES_ENOTFOUND, response_to(q, soa, 0)};
        nx.packet[3] = 0x83;
        nx.packet[9] = 1;  // NSCOUNT
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(900), nx.negative_ttl().value());
        CPPUNIT_ASSERT(!nx.min_ttl());
    }

    // Every truncation of a valid reply and random bytes after a valid header:
    // the readers report "no TTL", and c-ares's parsers report an error.
    void garbage_packets_do_not_crash() {
        std::vector<unsigned char> q = query_packet("t", ns_t_mx, 1);
        std::vector<unsigned char> rr = {0xC0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 4, 0, 10, 0xC0, 12};
        std::vector<unsigned char> full = response_to(q, rr, 1);
        for (std::size_t n = 0; n < full.size(); ++n) {
            Answer a{ARES_SUCCESS, std::vector<unsigned char>(full.begin(), full.begin() + n)};
            CPPUNIT_ASSERT(!a.min_ttl() || n > q.size());
            a.negative_ttl();
        }
        std::mt19937 random(42);
        for (int i = 0; i < 2000; ++i) {
            std::vector<unsigned char> tail(random() % 64);
            for (auto& b : tail) b = static_cast<unsigned char>(random());
            Answer a{ARES_SUCCESS, response_to(q, tail, static_cast<unsigned char>(random() % 4))};
            a.packet[9] = static_cast<unsigned char>(random() % 3);
            a.min_ttl();
            a.negative_ttl();
        }
    }

    void bad_server_list() {
        asio::io_context io;
        CPPUNIT_ASSERT_THROW(Resolver(io, {"not an address"}, 100ms), std::invalid_argument);
        Resolver ok(io, {"127.0.0.1:5353, 127.0.0.2", "[::1]:5353"}, 100ms);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DnsRulesTest);

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
        asio::io_context io;
        auto resolver = std::make_unique<Resolver>(io, std::vector<std::string>{dns_->server()}, 5000ms);
        asio::co_spawn(io, resolver->mx_lookup("timeout.test"), asio::detached);
        asio::co_spawn(io, resolver->mx_lookup("multi.test"), asio::detached);
        io.run_for(50ms);
        CPPUNIT_ASSERT(!io.stopped());
        resolver.reset();
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
