// test_smtp_session: the SMTP client against real servers on loopback (smtp-sink, the pysink fixture, scripted servers), and message_data.
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

using namespace mxlane;
using namespace mxlane::smtp;
namespace asio = boost::asio;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

#ifndef MXLANE_SRCDIR
#define MXLANE_SRCDIR "."
#endif

std::string fixtures_dir() {
    const char* env = std::getenv("MXLANE_SRCDIR");
    return std::string(env && *env ? env : MXLANE_SRCDIR) + "/tests/fixtures";
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// A loopback address per server, so that tests never share a listener.
std::string next_ip() {
    static std::atomic<int> n{40};
    return "127.0.0." + std::to_string(n++ % 200 + 40);
}

// Asks the kernel for a free port on `ip` (the server binds it right after).
unsigned short free_port(const std::string& ip) {
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

bool can_connect(const std::string& ip, unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

asio::ip::tcp::endpoint endpoint(const std::string& ip, unsigned short port) {
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

// The project's aiosmtpd fixture (tests/fixtures/pysink.py) with listener modes.
struct PySink {
    test::TempDir dir;
    std::string ip = next_ip();
    unsigned short port = free_port(ip);
    std::unique_ptr<Child> child;

    explicit PySink(const std::string& modes = "") {
        std::string listen = ip + ":" + std::to_string(port) + (modes.empty() ? "" : "=" + modes);
        std::string pidfile = dir.file("pysink.pid");
        child = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", fixtures_dir() + "/pysink.py",
                                                                 "--out", dir.path(), "--pidfile", pidfile,
                                                                 "--timeout", "20", listen},
                                        dir.file("pysink.log"));
        for (int i = 0; i < 400 && !std::filesystem::exists(pidfile); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        CPPUNIT_ASSERT_MESSAGE("pysink did not start: " + slurp(dir.file("pysink.log")),
                               std::filesystem::exists(pidfile));
    }
    std::string accepted() const { return slurp(dir.file("accepted.jsonl")); }
    std::string mbox() const { return slurp(dir.file(ip + ".mbox")); }
    std::string connections() {
        child->stop();  // connection records are complete once it has exited
        return slurp(dir.file("connections.jsonl"));
    }
    asio::ip::tcp::endpoint ep() const { return endpoint(ip, port); }
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
    Reply error;
    Stage stage = Stage::connect;
    std::vector<TransactionResult> results;
    std::string tls_summary, tls_fallback, tls_log_line;
    bool tls_verified = false, pipelining = false, usable_after = false;
    double seconds = 0;
};

Message message(std::vector<std::string> rcpts, std::string text = "Subject: test\n\nhello\n") {
    Message m;
    m.env.mail_from = "sender@mxlane.test";
    m.env.rcpts = std::move(rcpts);
    m.text = std::move(text);
    return m;
}

Options options(TlsLevel tls = TlsLevel::none) {
    Options o;
    o.helo_name = "client.mxlane.test";
    o.tls = tls;
    o.timeouts.connect = o.timeouts.helo = o.timeouts.mail = o.timeouts.rcpt = seconds(10);
    o.timeouts.data_init = o.timeouts.data_xfer = o.timeouts.data_done = seconds(10);
    return o;
}

// Opens a session, sends each message over it, quits.
Outcome deliver(asio::ip::tcp::endpoint ep, std::string host, Options opts, std::vector<Message> msgs,
                int threads = 1) {
    auto started = steady_clock::now();
    Outcome o = run<Outcome>(
        [&](asio::any_io_executor ex) -> asio::awaitable<Outcome> {
            Outcome out;
            ConnectResult c = co_await Session::open(ex, ep, host, opts);
            out.opened = bool(c);
            out.error = c.error;
            out.stage = c.stage;
            if (!c) co_return out;
            Session& s = *c.session;
            out.tls_summary = s.tls_summary();
            out.tls_log_line = s.tls_log_line();
            out.tls_fallback = s.tls_fallback();
            out.tls_verified = s.tls_verified();
            out.pipelining = s.pipelining();
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
asio::awaitable<void> send_many(asio::any_io_executor ex, asio::ip::tcp::endpoint ep, int count,
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
void greet(ScriptedServer::Conn& c, const std::string& ehlo_lines = "250-PIPELINING\r\n250 8BITMIME") {
    c.say("220 scripted.test ESMTP");
    c.line();
    c.say("250-scripted.test\r\n" + ehlo_lines);
}

}  // namespace

class MessageDataTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MessageDataTest);
    CPPUNIT_TEST(line_endings);
    CPPUNIT_TEST(dot_stuffing);
    CPPUNIT_TEST(eight_bit);
    CPPUNIT_TEST_SUITE_END();

public:
    void line_endings() {
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\nb\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\r\nb\r\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\nb").text);        // final CRLF ensured
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\rb").text);        // bare CR ends a line
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n\r\nb\r\n"), to_wire("a\n\r\nb").text);
        CPPUNIT_ASSERT_EQUAL(std::string(""), to_wire("").text);
        CPPUNIT_ASSERT_EQUAL(std::string("\r\n"), to_wire("\n").text);
    }

    void dot_stuffing() {
        CPPUNIT_ASSERT_EQUAL(std::string("..\r\n"), to_wire(".").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n..\r\nb\r\n"), to_wire("a\n.\nb\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("...x\r\n"), to_wire("..x\r\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a.b\r\n ..\r\n"), to_wire("a.b\n ..\n").text);  // not at line start
        // A "." after a bare CR starts a line too: no smuggled end of data.
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n..\r\nb\r\n"), to_wire("a\r.\rb").text);
        // The wire text never contains CRLF "." CRLF.
        std::string tricky = "x\n.\r\n.\r.\n\r\n.\n";
        CPPUNIT_ASSERT(!contains("\r\n" + to_wire(tricky).text, "\r\n.\r\n"));
    }

    void eight_bit() {
        CPPUNIT_ASSERT(!to_wire("plain ascii\n").eight_bit);
        CPPUNIT_ASSERT(to_wire("caf\xc3\xa9\n").eight_bit);
        CPPUNIT_ASSERT(has_eight_bit("\xff"));
        CPPUNIT_ASSERT(!has_eight_bit("~\x7f"));
    }
};

class SmtpSessionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SmtpSessionTest);
    CPPUNIT_TEST(smtp_sink_pipelined);
    CPPUNIT_TEST(smtp_sink_without_pipelining);
    CPPUNIT_TEST(smtp_sink_rejects);
    CPPUNIT_TEST(smtp_sink_421);
    CPPUNIT_TEST(helo_fallback);
    CPPUNIT_TEST(connection_refused);
    CPPUNIT_TEST(per_recipient_replies);
    CPPUNIT_TEST(rset_between_messages);
    CPPUNIT_TEST(address_probe);
    CPPUNIT_TEST(smtputf8_not_offered);
    CPPUNIT_TEST(no_recipient_but_354);
    CPPUNIT_TEST(mail_parameters);
    CPPUNIT_TEST(tls_may_starttls_refused);
    CPPUNIT_TEST(many_sessions_many_threads);
    CPPUNIT_TEST(tls_may);
    CPPUNIT_TEST(tls_may_falls_back_to_clear);
    CPPUNIT_TEST(tls_encrypt_not_offered);
    CPPUNIT_TEST(tls_verify);
    CPPUNIT_TEST(auth_over_tls);
    CPPUNIT_TEST(hostile_overlong_line);
    CPPUNIT_TEST(hostile_garbage);
    CPPUNIT_TEST(hostile_mismatched_multiline);
    CPPUNIT_TEST(hostile_disconnect_mid_data);
    CPPUNIT_TEST(hostile_drip_greeting);
    CPPUNIT_TEST(hostile_drip_rcpt);
    CPPUNIT_TEST_SUITE_END();

public:
    void smtp_sink_pipelined() {
        SmtpSink sink;
        Outcome o = deliver(sink.ep(), "sink.test", options(),
                            {message({"a@x.test", "b@x.test"}, "Subject: one\n\n.leading dot\nbody\n"),
                             message({"c@x.test"}, "Subject: two\n\nsecond\n")});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.pipelining);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), o.results.size());
        for (const auto& r : o.results) {
            CPPUNIT_ASSERT_EQUAL(250, r.mail.code);
            for (const auto& rc : r.rcpts) CPPUNIT_ASSERT_EQUAL(250, rc.code);
            CPPUNIT_ASSERT_EQUAL(250, r.data.code);
            CPPUNIT_ASSERT(r.data_stage == Stage::data_done);
            CPPUNIT_ASSERT(!r.connection_lost);
        }
        CPPUNIT_ASSERT(o.usable_after);
        sink.child->stop();
        std::string dump = sink.dump();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), count(dump, "X-Mail-Args: <sender@mxlane.test>"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), count(dump, "X-Rcpt-Args: <"));
        CPPUNIT_ASSERT(contains(dump, "\n.leading dot\n"));  // the sink undid our dot-stuffing
        CPPUNIT_ASSERT(contains(dump, "X-Helo-Args: client.mxlane.test"));
    }

    void smtp_sink_without_pipelining() {
        SmtpSink sink({"-p"});
        Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        sink.child->stop();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), count(sink.dump(), "X-Rcpt-Args: <"));
    }

    void smtp_sink_rejects() {
        {
            SmtpSink sink({"-r", "RCPT", "-b", "451 4.3.0 try later"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT(r.rcpts.at(0).temporary() && r.rcpts.at(1).temporary());
            CPPUNIT_ASSERT_EQUAL(std::string("4.3.0"), r.rcpts.at(0).enhanced);
            CPPUNIT_ASSERT_EQUAL(0, r.data.code);  // nothing accepted, no DATA
            CPPUNIT_ASSERT(o.usable_after);
        }
        {
            SmtpSink sink({"-f", "MAIL", "-B", "550 5.7.1 go away"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(550, r.mail.code);
            CPPUNIT_ASSERT_EQUAL(std::string("550 5.7.1 go away"), r.rcpts.at(1).str());
            CPPUNIT_ASSERT_EQUAL(std::string("host sink.test[" + sink.ip + "] said: 550 5.7.1 go away (in reply to "
                                             "MAIL FROM command)"),
                                 describe_reply(r.mail, Stage::mail, "sink.test[" + sink.ip + "]"));
        }
        {
            SmtpSink sink({"-f", ".", "-B", "554 5.7.1 content rejected"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
            CPPUNIT_ASSERT_EQUAL(554, r.data.code);
            CPPUNIT_ASSERT(r.data_stage == Stage::data_done);
        }
    }

    void smtp_sink_421() {
        {
            SmtpSink sink({"-Q", "RCPT"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test", "c@x.test"})});
            const auto& r = o.results.at(0);
            for (const auto& rc : r.rcpts) CPPUNIT_ASSERT_EQUAL(421, rc.code);
            CPPUNIT_ASSERT(!o.usable_after);
        }
        {
            SmtpSink sink({"-Q", "CONNECT"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"})});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT_EQUAL(421, o.error.code);
            CPPUNIT_ASSERT(o.stage == Stage::greeting);
        }
    }

    void helo_fallback() {
        SmtpSink sink({"-e"});  // no ESMTP: EHLO gets 500
        Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"}, "caf\xc3\xa9\n")});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        sink.child->stop();
        std::string dump = sink.dump();
        CPPUNIT_ASSERT(contains(dump, "X-Client-Proto: SMTP"));
        CPPUNIT_ASSERT(!contains(dump, "BODY=8BITMIME"));  // not offered, not sent
    }

    void connection_refused() {
        std::string ip = next_ip();
        unsigned short port = free_port(ip);
        Outcome o = deliver(endpoint(ip, port), "mx.refused.test", options(), {});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::connect);
        CPPUNIT_ASSERT(o.error.synthetic && o.error.temporary());
        CPPUNIT_ASSERT_EQUAL(std::string("4.4.1"), o.error.enhanced);
        CPPUNIT_ASSERT_EQUAL("connect to mx.refused.test[" + ip + "]:" + std::to_string(port) + ": Connection refused",
                             o.error.text);
    }

    void per_recipient_replies() {
        PySink sink;
        Outcome o = deliver(sink.ep(), "py.test", options(),
                            {message({"ann@x.test", "hard1@x.test", "soft1@x.test", "bob@x.test"})});
        CPPUNIT_ASSERT(o.opened && o.pipelining);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(550, r.rcpts.at(1).code);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), r.rcpts.at(1).enhanced);
        CPPUNIT_ASSERT_EQUAL(451, r.rcpts.at(2).code);
        CPPUNIT_ASSERT_EQUAL(std::string("4.3.0"), r.rcpts.at(2).dsn());
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(3).code);
        CPPUNIT_ASSERT_EQUAL(250, r.data.code);
        std::string accepted = sink.accepted();
        CPPUNIT_ASSERT(contains(accepted, "\"rcpt\": [\"ann@x.test\", \"bob@x.test\"]"));
        // datahard: accepted at RCPT, refused after the dot.
        Outcome d = deliver(sink.ep(), "py.test", options(), {message({"datahard@x.test"})});
        CPPUNIT_ASSERT_EQUAL(554, d.results.at(0).data.code);
        CPPUNIT_ASSERT(d.results.at(0).data_stage == Stage::data_done);
    }

    void rset_between_messages() {
        PySink sink("nopipelining");
        Outcome o = deliver(sink.ep(), "py.test", options(),
                            {message({"hard1@x.test"}), message({"ann@x.test"}), message({"bob@x.test"})});
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(550, o.results.at(0).rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(1).data.code);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(2).data.code);
        std::string conns = sink.connections();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count(conns, "\"id\":"));
        CPPUNIT_ASSERT(contains(conns, "\"mails\": 3"));
        CPPUNIT_ASSERT(contains(conns, "\"messages\": 2"));
        CPPUNIT_ASSERT(contains(conns, "\"early_commands\": 0"));  // one command, one reply
    }

    void address_probe() {
        // stop_before_data (mxlanectl verify): MAIL and RCPT only; the next
        // transaction on the connection starts with RSET.
        for (std::string modes : {"", "nopipelining"}) {
            PySink sink(modes);
            Message probe = message({"ann@x.test", "hard1@x.test"});
            probe.env.stop_before_data = true;
            Outcome o = deliver(sink.ep(), "py.test", options(), {probe, message({"bob@x.test"})});
            const auto& p = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, p.rcpts.at(0).code);
            CPPUNIT_ASSERT_EQUAL(550, p.rcpts.at(1).code);
            CPPUNIT_ASSERT_EQUAL(0, p.data.code);
            CPPUNIT_ASSERT_EQUAL(250, o.results.at(1).data.code);
            std::string accepted = sink.accepted();
            CPPUNIT_ASSERT(!contains(accepted, "ann@x.test"));
            CPPUNIT_ASSERT(contains(accepted, "bob@x.test"));
            std::string conns = sink.connections();
            CPPUNIT_ASSERT(contains(conns, "\"mails\": 2"));
            CPPUNIT_ASSERT(contains(conns, "\"messages\": 1"));
        }
    }

    void smtputf8_not_offered() {
        PySink sink;
        Message m = message({"j\xc3\xb6rg@x.test"});
        m.env.smtputf8 = true;
        Outcome o = deliver(sink.ep(), "py.test", options(), {m});
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(std::string("5.6.7"), r.rcpts.at(0).enhanced);
        CPPUNIT_ASSERT(r.rcpts.at(0).permanent() && r.rcpts.at(0).synthetic);
        CPPUNIT_ASSERT(contains(sink.connections(), "\"mails\": 0"));
    }

    void no_recipient_but_354() {
        // RFC 2920 3.1: a server that answers DATA with 354 although no RCPT
        // succeeded gets an empty message, never the text.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c);
            c.line();  // MAIL
            c.line();  // RCPT
            c.line();  // RCPT
            c.line();  // DATA
            c.say("250 2.1.0 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go ahead");
            c.line();  // "." expected
            c.say("554 5.5.1 no valid recipients");
            for (std::string l = c.line(); !l.empty(); l = c.line()) c.say(l == "QUIT" ? "221 bye" : "250 ok");
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test", "b@x.test"}, "SECRET\n")});
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(550, r.rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(0, r.data.code);
        CPPUNIT_ASSERT(o.usable_after);
        auto lines = server.lines();
        CPPUNIT_ASSERT(lines.size() >= 6);
        CPPUNIT_ASSERT_EQUAL(std::string("DATA"), lines.at(4));
        CPPUNIT_ASSERT_EQUAL(std::string("."), lines.at(5));
        for (const auto& l : lines) CPPUNIT_ASSERT(l != "SECRET");
    }

    void mail_parameters() {
        // SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) go
        // out only when offered; a message over the announced SIZE is not sent.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-PIPELINING\r\n250-SIZE 1000\r\n250-SMTPUTF8\r\n250 8BITMIME");
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
        });
        Message utf8 = message({"j\xc3\xb6rg@x.test"}, "Subject: caf\xc3\xa9\n\nbody\n");
        utf8.env.smtputf8 = true;
        utf8.env.extra_mail_params = "RET=HDRS";
        Message big = message({"a@x.test"}, std::string(2000, 'x') + "\n");
        Outcome o = deliver(server.ep(), "scripted.test", options(), {utf8, big});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        const auto& r = o.results.at(1).rcpts.at(0);
        CPPUNIT_ASSERT_EQUAL(552, r.code);
        CPPUNIT_ASSERT_EQUAL(std::string("5.3.4"), r.enhanced);
        auto lines = server.lines();
        std::size_t wire_size = to_wire(utf8.text).text.size();
        CPPUNIT_ASSERT_EQUAL("MAIL FROM:<sender@mxlane.test> SIZE=" + std::to_string(wire_size) +
                                 " BODY=8BITMIME SMTPUTF8 RET=HDRS",
                             lines.at(1));
        std::size_t mails = 0;
        for (const auto& l : lines) mails += l.rfind("MAIL FROM", 0) == 0;
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), mails);
    }

    void tls_may_starttls_refused() {
        // Level may: a refused STARTTLS means clear text on the same connection.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-STARTTLS\r\n250 8BITMIME");
            for (std::string l = c.line(); !l.empty(); l = c.line()) {
                if (l == "STARTTLS") c.say("454 4.7.0 TLS not available due to temporary reason");
                else if (l == "DATA") {
                    c.say("354 go");
                    c.message();
                    c.say("250 2.0.0 queued");
                } else if (l == "QUIT") {
                    c.say("221 bye");
                    return;
                } else {
                    c.say("250 ok");
                }
            }
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(TlsLevel::may), {message({"a@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_summary.empty());
        CPPUNIT_ASSERT(contains(o.tls_fallback, "STARTTLS refused: 454 4.7.0"));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL(1, server.connections());
        // Level encrypt: the same refusal is a failure, and nothing is sent.
        Outcome e = deliver(server.ep(), "scripted.test", options(TlsLevel::encrypt), {message({"b@x.test"})});
        CPPUNIT_ASSERT(!e.opened);
        CPPUNIT_ASSERT(e.stage == Stage::starttls);
        CPPUNIT_ASSERT_EQUAL(454, e.error.code);
        for (const auto& l : server.lines()) CPPUNIT_ASSERT(l != "RCPT TO:<b@x.test>");
    }

    void many_sessions_many_threads() {
        SmtpSink sink;
        const int sessions = 8, per_session = 25;
        // Started together on one io_context run by two threads: they interleave.
        asio::io_context io;
        std::atomic<int> delivered{0}, finished{0};
        for (int i = 0; i < sessions; ++i)
            asio::co_spawn(io, send_many(io.get_executor(), sink.ep(), per_session, delivered),
                           [&](std::exception_ptr e) { finished += e ? 0 : 1; });
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        CPPUNIT_ASSERT_EQUAL(sessions, finished.load());
        CPPUNIT_ASSERT_EQUAL(sessions * per_session, delivered.load());
    }

    void tls_may() {
        const Certs& certs = Certs::get();
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key"));
        Outcome o = deliver(sink.ep(), "mx.tls.test", options(TlsLevel::may), {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT_MESSAGE(o.tls_summary, contains(o.tls_summary, "TLSv1."));
        CPPUNIT_ASSERT(contains(o.tls_summary, " with cipher "));
        CPPUNIT_ASSERT(contains(o.tls_summary, " bits)"));
        CPPUNIT_ASSERT(!o.tls_verified);  // the test CA is not in the system store
        CPPUNIT_ASSERT(contains(o.tls_log_line, "Untrusted TLS connection established to mx.tls.test["));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT(contains(sink.accepted(), "\"tls\": true"));
        // Self-signed: still encrypted at level may.
        PySink self("tls:" + certs.file("self.crt") + ":" + certs.file("self.key"));
        Outcome s = deliver(self.ep(), "mx.tls.test", options(TlsLevel::may), {message({"ann@x.test"})});
        CPPUNIT_ASSERT(s.opened && !s.tls_summary.empty());
        CPPUNIT_ASSERT_EQUAL(250, s.results.at(0).data.code);
    }

    void tls_may_falls_back_to_clear() {
        // First connection: STARTTLS accepted, then no TLS at all; the second
        // connection must not try again and delivers in clear.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-PIPELINING\r\n250 STARTTLS");
            if (c.index == 0) {
                c.line();
                c.say("220 2.0.0 go ahead");
                c.raw("this is not a TLS server hello\r\n");
                c.line();
                return;
            }
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
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(TlsLevel::may), {message({"a@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_summary.empty());
        CPPUNIT_ASSERT_MESSAGE(o.tls_fallback, contains(o.tls_fallback, "continued in clear text"));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL(2, server.connections());
    }

    void tls_encrypt_not_offered() {
        SmtpSink sink;
        Outcome o = deliver(sink.ep(), "sink.test", options(TlsLevel::encrypt), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.error.temporary() && o.error.synthetic);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.4"), o.error.enhanced);
        CPPUNIT_ASSERT(contains(o.error.text, "TLS is required, but was not offered by host sink.test["));
        sink.child->stop();
        CPPUNIT_ASSERT(!contains(sink.dump(), "X-Mail-Args"));
    }

    void tls_verify() {
        const Certs& certs = Certs::get();
        Options verify = options(TlsLevel::verify);
        verify.tls_ca_file = certs.file("ca.crt");
        verify.tls_context = std::make_shared<TlsContext>(verify.tls_ca_file);
        verify.tls_server_name = "mx.tls.test";
        {
            PySink self("tls:" + certs.file("self.crt") + ":" + certs.file("self.key"));
            Outcome o = deliver(self.ep(), "mx.tls.test", verify, {message({"ann@x.test"})});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT(o.stage == Stage::tls_handshake);
            CPPUNIT_ASSERT_EQUAL(std::string("4.7.5"), o.error.enhanced);
            CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "Server certificate not verified"));
            CPPUNIT_ASSERT(!contains(self.accepted(), "ann@x.test"));
        }
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key"));
        Outcome o = deliver(sink.ep(), "mx.tls.test", verify, {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_verified);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL("Verified TLS connection established to mx.tls.test[" + sink.ip + "]:" +
                                 std::to_string(sink.port) + ": " + o.tls_summary,
                             o.tls_log_line);
        // A second connection resumes the session cached under the name.
        Outcome again = deliver(sink.ep(), "mx.tls.test", verify, {message({"bob@x.test"})});
        CPPUNIT_ASSERT(again.tls_verified);
        CPPUNIT_ASSERT(verify.tls_context->cached_sessions() >= 1);
        // The right CA, the wrong name.
        Options wrong = verify;
        wrong.tls_server_name = "other.tls.test";
        Outcome w = deliver(sink.ep(), "other.tls.test", wrong, {message({"cy@x.test"})});
        CPPUNIT_ASSERT(!w.opened);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.5"), w.error.enhanced);
        std::string accepted = sink.accepted();
        CPPUNIT_ASSERT(contains(accepted, "ann@x.test") && contains(accepted, "bob@x.test"));
        CPPUNIT_ASSERT(!contains(accepted, "cy@x.test"));
    }

    void auth_over_tls() {
        const Certs& certs = Certs::get();
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key") + ",auth:relayuser:s3cret");
        Options good = options(TlsLevel::encrypt);
        good.auth_user = "relayuser";
        good.auth_password = "s3cret";
        Outcome o = deliver(sink.ep(), "mx.tls.test", good, {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT(contains(sink.accepted(), "\"auth\": \"relayuser\""));
        Options bad = good;
        bad.auth_password = "wrong";
        Outcome b = deliver(sink.ep(), "mx.tls.test", bad, {message({"bob@x.test"})});
        CPPUNIT_ASSERT(!b.opened);
        CPPUNIT_ASSERT(b.stage == Stage::auth);
        CPPUNIT_ASSERT(b.error.temporary());  // a wrong password defers, never bounces
        CPPUNIT_ASSERT(contains(b.error.text, "SASL authentication failed"));
        // Credentials without TLS are never sent.
        Options clear = good;
        clear.tls = TlsLevel::none;
        Outcome c = deliver(sink.ep(), "mx.tls.test", clear, {message({"cy@x.test"})});
        CPPUNIT_ASSERT(!c.opened);
        CPPUNIT_ASSERT(c.stage == Stage::auth);
    }

    void hostile_overlong_line() {
        PySink sink("hostile-longline");
        Outcome o = deliver(sink.ep(), "evil.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.error.temporary() && o.error.synthetic);
        CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "longer than 8192 bytes"));
        CPPUNIT_ASSERT(o.seconds < 5);
    }

    void hostile_garbage() {
        PySink sink("hostile-garbage");
        Outcome o = deliver(sink.ep(), "evil.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::helo);
        CPPUNIT_ASSERT_EQUAL(std::string("4.5.0"), o.error.enhanced);
        CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "malformed reply"));
    }

    void hostile_mismatched_multiline() {
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c);
            c.line();
            c.say("250-2.1.0 ok\r\n550 5.1.1 changed my mind");
            c.line();
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT(r.mail.temporary() && r.rcpts.at(0).temporary());
        CPPUNIT_ASSERT_MESSAGE(r.mail.text, contains(r.mail.text, "reply code changed from 250 to 550"));
        CPPUNIT_ASSERT(!o.usable_after);
    }

    void hostile_disconnect_mid_data() {
        PySink sink("hostile-dropdata");
        Outcome o = deliver(sink.ep(), "evil.test", options(),
                            {message({"a@x.test"}, std::string(3 * 1024 * 1024, 'x') + "\n")});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT(r.data.temporary() && r.data.synthetic);
        CPPUNIT_ASSERT_MESSAGE(r.data.text, contains(r.data.text, "lost connection with evil.test["));
        CPPUNIT_ASSERT(!o.usable_after);
        CPPUNIT_ASSERT(o.seconds < 15);
    }

    void hostile_drip_greeting() {
        PySink sink("hostile-drip");
        Options opts = options();
        opts.timeouts.helo = seconds(2);
        Outcome o = deliver(sink.ep(), "evil.test", opts, {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::greeting);
        CPPUNIT_ASSERT_MESSAGE(o.error.text,
                               contains(o.error.text, "timed out while receiving the initial server greeting"));
        CPPUNIT_ASSERT(o.seconds >= 1.9 && o.seconds < 4);
    }

    void hostile_drip_rcpt() {
        // One byte every 300 ms never lets a read wait long, but the step
        // (the whole RCPT reply) must still end at its limit.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250 8BITMIME");
            c.line();
            c.say("250 2.1.0 ok");
            c.line();
            for (char ch : std::string("250 2.1.5 ok, eventually\r\n")) {
                if (!c.raw(std::string(1, ch))) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
            }
        });
        Options opts = options();
        opts.timeouts.rcpt = seconds(2);
        Outcome o = deliver(server.ep(), "slow.test", opts, {message({"a@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT_MESSAGE(r.rcpts.at(0).text,
                               contains(r.rcpts.at(0).text, "timed out while sending RCPT TO"));
        CPPUNIT_ASSERT(o.seconds < 5);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MessageDataTest);
CPPUNIT_TEST_SUITE_REGISTRATION(SmtpSessionTest);
