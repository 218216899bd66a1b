// dns_fixtures: DNS packets by hand, a private dnsmasq and a garbage-answering server on
// loopback, for the resolver tests.
#pragma once
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

namespace dns_fixtures {

using namespace mxlane::dns;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;


inline MxHost host(std::string name, int preference) { return MxHost{std::move(name), preference, {}}; }

inline std::vector<std::string> names(const MxResult& r) {
    std::vector<std::string> out;
    for (const MxHost& h : r.hosts) out.push_back(h.name);
    return out;
}

inline std::set<std::string> addresses(const MxHost& h) {
    std::set<std::string> out;
    for (const auto& a : h.addresses) out.insert(a.to_string());
    return out;
}

inline std::string describe(const MxResult& r) {
    std::ostringstream out;
    out << to_string(r.status) << " dsn=" << r.dsn << " error=" << r.error << " hosts=";
    for (const MxHost& h : r.hosts) out << h.name << "/" << h.preference << " ";
    return out.str();
}

// A DNS query message (RFC 1035 4.1) for the probes and the fake server.
inline std::vector<unsigned char> query_packet(const std::string& name, int type, std::uint16_t id) {
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

inline int udp_socket(int port = 0) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("cannot bind a loopback UDP socket");
    return fd;
}

inline int port_of(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

// A loopback port free for UDP and TCP (dnsmasq binds both).
inline int free_port() {
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
inline bool probe(int port, const std::string& name, std::chrono::milliseconds wait) {
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
// answers. Stopped by pid. `extra`: more dnsmasq lines (txt-record=..., one a line).
class Dnsmasq {
public:
    static constexpr const char* binary = "/usr/sbin/dnsmasq";

    explicit Dnsmasq(std::string extra = {}) : extra_(std::move(extra)), port_(free_port()), black_hole_(udp_socket()) {
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
          << records << extra_ << "\n";
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
    std::string extra_;
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
inline std::vector<unsigned char> response_to(std::vector<unsigned char> query, const std::vector<unsigned char>& tail,
                                       unsigned char answers = 1) {
    query[2] |= 0x80;  // QR
    query[3] = 0x80;   // RA, NOERROR
    query[7] = answers;
    query.insert(query.end(), tail.begin(), tail.end());
    return query;
}

}  // namespace dns_fixtures
