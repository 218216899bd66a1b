// redis_client: one connection to Redis on the event loop (plain or TLS), pipelined, reconnecting with backoff.
#include "qrunner/redis_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <hiredis/hiredis.h>

#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <stdexcept>

#include "libshared/log.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

RedisUrl RedisUrl::parse(std::string_view url) {
    RedisUrl u;
    std::string_view rest;
    if (url.starts_with("redis://")) rest = url.substr(8);
    else if (url.starts_with("rediss://")) u.tls = true, rest = url.substr(9);
    else throw std::invalid_argument("not redis://HOST:PORT/DB or rediss://HOST:PORT/DB: " + std::string(url));
    std::string_view hostport = rest.substr(0, rest.find('/'));
    if (hostport.find('@') != std::string_view::npos)
        throw std::invalid_argument("no password in the URL: put it in shared_state_password_file");
    std::string_view port;
    if (hostport.starts_with("[")) {  // [::1]:6379
        auto close = hostport.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("unclosed [ in " + std::string(url));
        u.host = std::string(hostport.substr(1, close - 1));
        if (close + 1 < hostport.size() && hostport[close + 1] == ':') port = hostport.substr(close + 2);
    } else {
        auto colon = hostport.rfind(':');
        u.host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
    }
    auto number = [&](std::string_view text, int max, const char* what) {
        int v = -1;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || p != text.data() + text.size() || v < 0 || v > max)
            throw std::invalid_argument(std::string("bad ") + what + " in " + std::string(url));
        return v;
    };
    if (u.host.empty()) throw std::invalid_argument("no host in " + std::string(url));
    if (!port.empty()) u.port = number(port, 65535, "port");
    if (rest.find('/') != std::string_view::npos && rest.size() > rest.find('/') + 1)
        u.db = number(rest.substr(rest.find('/') + 1), 1000000, "database number");
    return u;
}

std::string RedisUrl::label() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "rediss://" : "redis://") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) +
           "/" + std::to_string(db);
}

long long RedisReply::number() const {
    if (type == Type::integer) return integer;
    long long v = 0;
    std::from_chars(str.data(), str.data() + str.size(), v);
    return v;
}

std::chrono::milliseconds reconnect_delay(int attempt) {
    auto d = std::chrono::milliseconds(100);
    for (int i = 0; i < attempt && d < std::chrono::seconds(10); ++i) d *= 2;
    return std::min<std::chrono::milliseconds>(d, std::chrono::seconds(10));
}

namespace {

RedisReply convert(const redisReply* r) {
    RedisReply out;
    switch (r->type) {
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer, out.integer = r->integer; break;
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::array;
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
    default: break;
    }
    return out;
}

std::string format(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
    if (n < 0) throw std::bad_alloc();
    std::string out(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    return out;
}

}  // namespace

struct RedisClient::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor ex, RedisUrl u, std::chrono::milliseconds t)
        : strand(asio::make_strand(ex)), url(std::move(u)), timeout(t), retry(strand), watchdog(strand) {
        tls.set_default_verify_paths();
        if (!url.ca_file.empty()) {
            boost::system::error_code ec;
            tls.load_verify_file(url.ca_file, ec);
            if (ec) throw std::runtime_error("shared_state_tls_CAfile " + url.ca_file + ": " + ec.message());
        }
        tls.set_verify_mode(asio::ssl::verify_peer);
    }
    ~Impl() { free_reader(); }

    struct Pending {
        Callback done;
        SteadyClock::time_point sent;
    };
    asio::strand<asio::any_io_executor> strand;
    RedisUrl url;
    std::chrono::milliseconds timeout;
    asio::ssl::context tls{asio::ssl::context::tls_client};
    std::unique_ptr<asio::ssl::stream<tcp::socket>> sock;
    asio::steady_timer retry, watchdog;
    redisReader* reader = nullptr;
    std::atomic<bool> is_up{false};
    bool stopped = false;
    bool writing = false;
    std::optional<SteadyClock::time_point> connecting;  // since when, while connecting
    std::deque<std::pair<std::string, Callback>> outbox;  // not yet written
    std::deque<Pending> pending;                          // written, waiting for their reply
    std::function<void(bool)> state_cb;
    std::map<std::string, std::function<void(const std::string&)>> channels;

    void free_reader() {
        if (reader) redisReaderFree(reader);
        reader = nullptr;
    }

    asio::awaitable<void> run() {
        auto self = shared_from_this();
        for (int attempt = 0; !stopped;) {
            bool was_up = false;
            try {
                co_await session(was_up);
            } catch (const std::exception&) {
                // the connection failed or was dropped; drop() tells the owner
            }
            drop();
            if (stopped) break;
            attempt = was_up ? 0 : attempt + 1;
            retry.expires_after(reconnect_delay(attempt));
            co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    // Connecting, the handshake and a reply later than `timeout` drop the connection.
    asio::awaitable<void> watch() {
        auto self = shared_from_this();
        while (!stopped) {
            watchdog.expires_after(std::chrono::milliseconds(100));
            co_await watchdog.async_wait(asio::as_tuple(asio::use_awaitable));
            const auto now = SteadyClock::now();
            const bool late = (connecting && now - *connecting > timeout) ||
                              (!pending.empty() && now - pending.front().sent > timeout);
            if (late && sock) {
                boost::system::error_code ec;
                sock->lowest_layer().close(ec);
            }
        }
    }

    asio::awaitable<void> session(bool& was_up) {
        connecting = SteadyClock::now();
        sock = std::make_unique<asio::ssl::stream<tcp::socket>>(strand, tls);
        tcp::resolver resolver(strand);
        auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port), asio::use_awaitable);
        co_await asio::async_connect(sock->next_layer(), endpoints, asio::use_awaitable);
        if (url.tls) {
            SSL_set_tlsext_host_name(sock->native_handle(), url.host.c_str());
            sock->set_verify_callback(asio::ssl::host_name_verification(url.host));
            co_await sock->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        }
        connecting.reset();
        free_reader();
        reader = redisReaderCreate();
        handshake(was_up);
        char buf[16384];
        for (;;) {
            std::size_t n = url.tls ? co_await sock->async_read_some(asio::buffer(buf), asio::use_awaitable)
                                    : co_await sock->next_layer().async_read_some(asio::buffer(buf), asio::use_awaitable);
            if (redisReaderFeed(reader, buf, n) != REDIS_OK) throw std::runtime_error("bad reply from Redis");
            for (;;) {
                void* raw = nullptr;
                if (redisReaderGetReply(reader, &raw) != REDIS_OK) throw std::runtime_error("bad reply from Redis");
                if (!raw) break;
                RedisReply reply = convert(static_cast<redisReply*>(raw));
                freeReplyObject(raw);
                dispatch(std::move(reply));
            }
        }
    }

    // AUTH, SELECT, SUBSCRIBE as needed, then PING: its answer means up.
    void handshake(bool& was_up) {
        auto fail_on_error = [this](const char* what) {
            return [this, what](std::optional<RedisReply> r) {
                if (r && r->error()) {
                    log::error(std::string("shared_state: Redis at ") + url.label() + " refused " + what + ": " + r->str);
                    boost::system::error_code ec;
                    if (sock) sock->lowest_layer().close(ec);
                }
            };
        };
        std::vector<std::pair<std::vector<std::string>, Callback>> hello;
        if (!url.password.empty()) hello.push_back({{"AUTH", url.password}, fail_on_error("AUTH")});
        if (url.db != 0) hello.push_back({{"SELECT", std::to_string(url.db)}, fail_on_error("SELECT")});
        for (const auto& [channel, f] : channels) hello.push_back({{"SUBSCRIBE", channel}, fail_on_error("SUBSCRIBE")});
        hello.push_back({{"PING"}, [this, &was_up](std::optional<RedisReply> r) {
                             if (!r || r->error() || !sock || !sock->lowest_layer().is_open()) return;
                             was_up = true;
                             is_up = true;
                             if (state_cb) state_cb(true);
                         }});
        for (auto it = hello.rbegin(); it != hello.rend(); ++it) outbox.emplace_front(format(it->first), it->second);
        flush();
    }

    void dispatch(RedisReply reply) {
        const bool pushed = !channels.empty() && reply.type == RedisReply::Type::array &&
                            reply.elements.size() == 3 && reply.elements[0].str == "message";
        if (pushed) {
            auto it = channels.find(reply.elements[1].str);
            if (it != channels.end() && it->second) it->second(reply.elements[2].str);
            return;
        }
        if (pending.empty()) throw std::runtime_error("a reply from Redis that nothing asked for");
        auto done = std::move(pending.front().done);
        pending.pop_front();
        if (done) done(std::move(reply));
    }

    void flush() {
        if (writing || outbox.empty() || !sock || !sock->lowest_layer().is_open()) return;
        auto data = std::make_shared<std::string>();
        const auto now = SteadyClock::now();
        for (auto& [bytes, done] : outbox) {
            *data += bytes;
            pending.push_back({std::move(done), now});
        }
        outbox.clear();
        writing = true;
        auto handler = [this, self = shared_from_this(), data](boost::system::error_code ec, std::size_t) {
            writing = false;
            if (ec) {
                if (sock) sock->lowest_layer().close(ec);
                return;
            }
            flush();
        };
        if (url.tls) asio::async_write(*sock, asio::buffer(*data), handler);
        else asio::async_write(sock->next_layer(), asio::buffer(*data), handler);
    }

    // Everything asked of this connection gets "no answer"; the owner hears that it is down.
    void drop() {
        if (sock) {
            boost::system::error_code ec;
            sock->lowest_layer().close(ec);
        }
        connecting.reset();
        auto waiting = std::move(pending);
        auto unsent = std::move(outbox);
        pending.clear();
        outbox.clear();
        for (auto& p : waiting)
            if (p.done) p.done(std::nullopt);
        for (auto& [bytes, done] : unsent)
            if (done) done(std::nullopt);
        if (is_up.exchange(false) && state_cb) state_cb(false);
    }
};

RedisClient::RedisClient(asio::any_io_executor ex, RedisUrl url, std::chrono::milliseconds timeout)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(url), timeout)) {}

RedisClient::~RedisClient() { stop(); }

void RedisClient::on_state(std::function<void(bool)> f) { impl_->state_cb = std::move(f); }

void RedisClient::subscribe(std::string channel, std::function<void(const std::string&)> f) {
    impl_->channels[std::move(channel)] = std::move(f);
}

void RedisClient::start() {
    auto log_end = [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error(std::string("shared_state: Redis connection ended: ") + ex.what());
        }
    };
    asio::co_spawn(impl_->strand, impl_->run(), log_end);
    asio::co_spawn(impl_->strand, impl_->watch(), log_end);
}

void RedisClient::stop() {
    asio::post(impl_->strand, [impl = impl_] {
        impl->stopped = true;
        impl->retry.cancel();
        impl->watchdog.cancel();
        impl->state_cb = nullptr;
        impl->channels.clear();
        if (impl->sock) {
            boost::system::error_code ec;
            impl->sock->lowest_layer().close(ec);
        }
    });
}

bool RedisClient::up() const { return impl_->is_up; }

void RedisClient::command(std::vector<std::string> args, Callback done) {
    asio::post(impl_->strand, [impl = impl_, args = std::move(args), done = std::move(done)]() mutable {
        if (!impl->is_up || impl->stopped) {  // nothing waits for Redis
            if (done) done(std::nullopt);
            return;
        }
        impl->outbox.emplace_back(format(args), std::move(done));
        impl->flush();
    });
}

}  // namespace mxlane::qrunner
