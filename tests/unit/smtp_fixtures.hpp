// smtp_fixtures: servers on loopback for the SMTP client tests (smtp-sink, the pysink
// fixture, scripted dialogues), and a way to run one delivery through Session.
#pragma once
// GCC 12 reports a false -Wmismatched-new-delete once an Asio coroutine frame
// is inlined (-O2 with sanitizers): the frame's own operator new and delete
// do pair up.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/smtp/message_data.hpp"
#include "qrunner/smtp/session.hpp"
#include "tests/unit/temp_dir.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

namespace smtp_fixtures {

using namespace mxlane;
using namespace mxlane::smtp;
namespace asio = boost::asio;
using std::chrono::seconds;
using std::chrono::steady_clock;

#ifndef MXLANE_SRCDIR
#define MXLANE_SRCDIR "."
#endif

inline std::string fixtures_dir() {
    const char* env = std::getenv("MXLANE_SRCDIR");
    return std::string(env && *env ? env : MXLANE_SRCDIR) + "/tests/fixtures";
}

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

inline std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

inline bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// A loopback address per server, so that tests never share a listener.
inline std::string next_ip() {
    static std::atomic<int> n{40};
    return "127.0.0." + std::to_string(n++ % 200 + 40);
}

// Asks the kernel for a free port on `ip` (the server binds it right after).
inline unsigned short free_port(const std::string& ip) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

inline bool can_connect(const std::string& ip, unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

inline asio::ip::tcp::endpoint endpoint(const std::string& ip, unsigned short port) {
    return {asio::ip::make_address(ip), port};
}

// A server process, stopped by its pid (SIGTERM, then SIGKILL).
class Child {
public:
    Child(const std::vector<std::string>& argv, const std::string& log) {
        pid_ = ::fork();
        if (pid_ == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Child() { stop(); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    pid_t pid_ = -1;
};

// Postfix's smtp-sink on ip:port; -D dumps every transaction to a file.
struct SmtpSink {
    test::TempDir dir;
    std::string ip = next_ip();
    unsigned short port = free_port(ip);
    std::unique_ptr<Child> child;

    explicit SmtpSink(const std::vector<std::string>& options = {}) {
        ::chmod(dir.path().c_str(), 0777);  // smtp-sink runs as nobody and writes the dump here
        std::vector<std::string> argv{"/usr/sbin/smtp-sink", "-4", "-u", "nobody", "-D", dump_path()};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(ip + ":" + std::to_string(port));
        argv.push_back("64");
        child = std::make_unique<Child>(argv, dir.file("sink.log"));
        for (int i = 0; i < 200 && !can_connect(ip, port); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::string dump_path() const { return dir.file("dump"); }
    std::string dump() const { return slurp(dump_path()); }
    asio::ip::tcp::endpoint ep() const { return endpoint(ip, port); }
};

// A python server from tests/fixtures on its own ip:port:
// SCRIPT --out DIR --pidfile FILE OPTIONS... IP:PORT[LISTEN_TAIL] ARGS...
struct PyServer {
    test::TempDir dir;
    std::string ip = next_ip();
    unsigned short port = free_port(ip);
    std::unique_ptr<Child> child;

    PyServer(const std::string& script, std::vector<std::string> options, const std::string& listen_tail,
             const std::vector<std::string>& args = {}) {
        std::string pidfile = dir.file("server.pid");
        std::vector<std::string> argv{"/usr/bin/python3", fixtures_dir() + "/" + script, "--out", dir.path(),
                                      "--pidfile", pidfile};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(ip + ":" + std::to_string(port) + listen_tail);
        argv.insert(argv.end(), args.begin(), args.end());
        child = std::make_unique<Child>(argv, dir.file("server.log"));
        for (int i = 0; i < 400 && !std::filesystem::exists(pidfile); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        CPPUNIT_ASSERT_MESSAGE(script + " did not start: " + slurp(dir.file("server.log")),
                               std::filesystem::exists(pidfile));
    }
    asio::ip::tcp::endpoint ep() const { return endpoint(ip, port); }
};

// The project's aiosmtpd fixture (tests/fixtures/pysink.py) with listener modes.
struct PySink : PyServer {
    explicit PySink(const std::string& modes = "")
        : PyServer("pysink.py", {"--timeout", "20"}, modes.empty() ? "" : "=" + modes) {}
    std::string accepted() const { return slurp(dir.file("accepted.jsonl")); }
    std::string mbox() const { return slurp(dir.file(ip + ".mbox")); }
    std::string connections() {
        child->stop();  // connection records are complete once it has exited
        return slurp(dir.file("connections.jsonl"));
    }
};

// tests/fixtures/scripted_smtp.py: replies chosen as VERB=REPLY ("|" between
// lines); with `tls` (CERT:KEY), a STARTTLS answered 220 starts TLS.
struct ScriptedSmtp : PyServer {
    explicit ScriptedSmtp(const std::vector<std::string>& replies, const std::string& tls = "")
        : PyServer("scripted_smtp.py", tls.empty() ? std::vector<std::string>{} : std::vector<std::string>{"--tls", tls},
                   "", replies) {}
    std::string received() const { return slurp(dir.file(ip + ".log")); }  // "<connection> <line>" lines
    std::vector<std::string> lines() const {  // every line received, without the connection number
        std::vector<std::string> out;
        std::istringstream in(received());
        for (std::string l; std::getline(in, l);) out.push_back(l.substr(std::min(l.find(' ') + 1, l.size())));
        return out;
    }
};

// Test certificates made with the openssl command: a CA and a server
// certificate for mx.tls.test signed by it, and a self-signed one.
struct Certs {
    test::TempDir dir;
    Certs() {
        std::string d = dir.path();
        std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
        std::string script =
            "cd " + d + " && exec >openssl.log 2>&1 && set -e && "
            "openssl req -x509" + ec + "-keyout ca.key -out ca.crt -days 3 -subj '/CN=mxlane test CA' "
            "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign && "
            "openssl req" + ec + "-keyout mx.key -out mx.csr -subj '/CN=mx.tls.test' && "
            "printf 'subjectAltName=DNS:mx.tls.test\\nbasicConstraints=CA:FALSE\\n' > mx.ext && "
            "openssl x509 -req -in mx.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile mx.ext "
            "-out mx.crt && "
            "openssl req -x509" + ec + "-keyout self.key -out self.crt -days 3 -subj '/CN=mx.tls.test' "
            "-addext subjectAltName=DNS:mx.tls.test";
        int rc = std::system(("sh -c \"" + script + "\"").c_str());
        if (rc != 0) throw std::runtime_error("openssl failed: " + slurp(dir.file("openssl.log")));
    }
    std::string file(const std::string& name) const { return dir.file(name); }
    static const Certs& get() {
        static Certs certs;
        return certs;
    }
};

// Runs one coroutine to its end on a fresh io_context with `threads` threads.
template <typename T>
T run(std::function<asio::awaitable<T>(asio::any_io_executor)> body, int threads = 1) {
    asio::io_context io;
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr e, T v) {
        if (e) error = e;
        else out = std::move(v);
    });
    std::vector<std::thread> extra;
    for (int i = 1; i < threads; ++i) extra.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : extra) t.join();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

struct Message {
    Envelope env;
    std::string text;
};

// What one connection did, without the session itself.
struct Outcome {
    bool opened = false;
    ConnectFailure failure = ConnectFailure::none;
    Reply error;
    Stage stage = Stage::connect;
    std::vector<TransactionResult> results;
    std::string tls_summary, tls_fallback, tls_log_line, greeting_name, ehlo_name;
    bool tls_verified = false, tls_resumed = false, pipelining = false, usable_after = false;
    double seconds = 0;
};

inline Message message(std::vector<std::string> rcpts, std::string text = "Subject: test\n\nhello\n") {
    Message m;
    m.env.mail_from = "sender@mxlane.test";
    m.env.rcpts = std::move(rcpts);
    m.text = std::move(text);
    return m;
}

inline Options options(TlsLevel tls = TlsLevel::none) {
    Options o;
    o.helo_name = "client.mxlane.test";
    o.tls = tls;
    o.timeouts.connect = o.timeouts.helo = o.timeouts.mail = o.timeouts.rcpt = seconds(10);
    o.timeouts.data_init = o.timeouts.data_xfer = o.timeouts.data_done = o.timeouts.rset = seconds(10);
    o.timeouts.quit = seconds(2);
    return o;
}

// Opens a session, sends each message over it, quits.
inline Outcome deliver(asio::ip::tcp::endpoint ep, std::string host, Options opts, std::vector<Message> msgs,
                int threads = 1) {
    auto started = steady_clock::now();
    Outcome o = run<Outcome>(
        [&](asio::any_io_executor ex) -> asio::awaitable<Outcome> {
            Outcome out;
            ConnectResult c = co_await Session::open(ex, ep, host, opts);
            out.opened = bool(c);
            out.failure = c.failure;
            out.error = c.error;
            out.stage = c.stage;
            if (!c) co_return out;
            Session& s = *c.session;
            out.tls_summary = s.tls_summary();
            out.tls_log_line = s.tls_log_line();
            out.tls_fallback = s.tls_fallback();
            out.tls_verified = s.tls_verified();
            out.tls_resumed = s.tls_resumed();
            out.pipelining = s.pipelining();
            out.greeting_name = s.greeting_name();
            out.ehlo_name = s.ehlo_name();
            for (auto& m : msgs) {
                WireMessage wire = to_wire(m.text);
                m.env.eight_bit = wire.eight_bit;
                m.env.size = wire.text.size();
                out.results.push_back(
                    co_await s.send(m.env, std::make_shared<const std::string>(std::move(wire.text))));
            }
            out.usable_after = s.usable();
            co_await s.quit();
            co_return out;
        },
        threads);
    o.seconds = std::chrono::duration<double>(steady_clock::now() - started).count();
    return o;
}

// One session sending `count` two-recipient messages; counts the delivered ones.
inline asio::awaitable<void> send_many(asio::any_io_executor ex, asio::ip::tcp::endpoint ep, int count,
                                std::atomic<int>& delivered) {
    ConnectResult c = co_await Session::open(ex, ep, "sink.test", options());
    if (!c) co_return;
    auto text = std::make_shared<const std::string>(to_wire("Subject: x\n\nbody\n").text);
    Envelope env = message(std::vector<std::string>{"a@x.test", "b@x.test"}).env;
    for (int i = 0; i < count; ++i) {
        TransactionResult r = co_await c.session->send(env, text);
        if (r.data.code == 250) ++delivered;
    }
    co_await c.session->quit();
}

// A hand-written server on its own thread: each accepted connection runs the
// script (sequentially). For behaviour the sinks do not have.
class ScriptedServer {
public:
    struct Conn {
        int fd;
        int index;               // 0 for the first connection
        std::string buffer;
        std::vector<std::string>* log;
        std::mutex* mutex;

        // One line without its CRLF; "" on EOF or after 10 s of silence.
        std::string line() {
            for (;;) {
                auto nl = buffer.find('\n');
                if (nl != std::string::npos) {
                    std::string l = buffer.substr(0, nl);
                    buffer.erase(0, nl + 1);
                    if (!l.empty() && l.back() == '\r') l.pop_back();
                    std::lock_guard lock(*mutex);
                    log->push_back(l);
                    return l;
                }
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 10000) <= 0) return "";
                char chunk[4096];
                ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) return "";
                buffer.append(chunk, static_cast<std::size_t>(n));
            }
        }
        bool raw(std::string_view bytes) {
            return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
        }
        bool say(const std::string& reply) { return raw(reply + "\r\n"); }
        // Reads lines up to the final "." (RFC 5321 4.5.2).
        void message() {
            for (std::string l = line(); l != "." && !(l.empty() && buffer.empty() && !alive()); l = line()) {
            }
        }
        bool alive() {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 0) <= 0) return true;
            char c;
            return ::recv(fd, &c, 1, MSG_PEEK) > 0;
        }
    };
    using Script = std::function<void(Conn&)>;

    explicit ScriptedServer(Script script) : script_(std::move(script)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(listen_fd_, 16);
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }
    std::vector<std::string> lines() {
        std::lock_guard lock(mutex_);
        return log_;
    }
    int connections() const { return connections_; }
    asio::ip::tcp::endpoint ep() const { return endpoint(ip, port); }

    const std::string ip = next_ip();
    unsigned short port = 0;

private:
    void serve() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) continue;
            Conn c{fd, connections_++, {}, &log_, &mutex_};
            try {
                script_(c);
            } catch (...) {
            }
            ::close(fd);
        }
    }

    Script script_;
    int listen_fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::mutex mutex_;
    std::vector<std::string> log_;
    std::thread thread_;
};

// The usual start of a scripted dialogue: greeting and EHLO.
inline void greet(ScriptedServer::Conn& c, const std::string& ehlo_lines = "250-PIPELINING\r\n250 8BITMIME") {
    c.say("220 scripted.test ESMTP");
    c.line();
    c.say("250-scripted.test\r\n" + ehlo_lines);
}

// After greet(): takes pipelined one-recipient transactions (MAIL, RCPT, DATA in one batch),
// each accepted, until QUIT or the client goes away; anything else gets 500.
inline void accept_pipelined(ScriptedServer::Conn& c) {
    for (std::string l = c.line(); !l.empty(); l = c.line()) {
        if (l == "DATA") {
            c.say("250 ok\r\n250 ok\r\n354 go");
            c.message();
            c.say("250 2.0.0 queued");
        } else if (l == "QUIT") {
            c.say("221 bye");
            return;
        } else if (l.rfind("RCPT", 0) != 0 && l.rfind("MAIL", 0) != 0) {
            c.say("500 what");
        }
    }
}

}  // namespace smtp_fixtures
