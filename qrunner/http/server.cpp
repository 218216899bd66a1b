// server: the qrunner's small HTTP server on http_listen (one-click unsubscribe, /metrics), bounded in size and time.
#include "qrunner/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
// GCC 12 with the sanitizers (--enable-sanitizers) sees a boost::optional in
// Beast's request parser as maybe uninitialized (a false positive, under -Werror).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "libshared/log.hpp"
#include "qrunner/http/request.hpp"

namespace mxlane::qrunner::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

tcp::endpoint parse_listen(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return std::invalid_argument("http_listen: " + why + ": \"" + text + "\" (HOST:PORT, [IPV6]:PORT)");
    };
    std::string host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw bad("no port");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) throw bad("no port");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
        throw bad("not a port");
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) throw bad("not an IP address");
    return {address, static_cast<unsigned short>(std::stoi(port))};
}

int listen_socket(const tcp::endpoint& ep) {
    asio::io_context io;
    tcp::acceptor acceptor(io);
    boost::system::error_code ec;
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::ostringstream where;
        where << ep;
        throw std::runtime_error("http_listen: cannot listen on " + where.str() + ": " + ec.message());
    }
    return acceptor.release();
}

struct Server::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& io, int fd, Handler h) : acceptor(io), handler(std::move(h)) {
        tcp::endpoint local;
        int family = AF_INET;
        socklen_t len = sizeof(family);
        ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len);
        acceptor.assign(family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
    }

    tcp::acceptor acceptor;
    Handler handler;
    asio::thread_pool pool{1};  // handlers: they may wait for the store
    std::atomic<std::size_t> open{0};
    std::atomic<bool> stopping{false};

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (!stopping) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (stopping || ec == asio::error::operation_aborted) co_return;
                log::warning("http_listen: accept failed: " + ec.message());
                continue;
            }
            if (open >= kMaxConnections) continue;  // closed at once: the socket goes out of scope
            ++open;
            asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), [self](std::exception_ptr) { --self->open; });
        }
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        auto self = shared_from_this();
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer(kMaxHeader + kMaxBody);
        for (int n = 0; n < kMaxRequests && !stopping; ++n) {
            RequestParser parser;
            set_limits(parser);
            stream.expires_after(std::chrono::seconds(kRequestTimeoutSeconds));
            auto [ec, bytes] = co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            (void)bytes;
            Response res;
            bool keep = false;
            if (auto refused = ec ? refusal(ec) : std::nullopt) {
                res = std::move(*refused);
            } else if (ec) {
                co_return;  // closed, timed out, or not HTTP: nothing to answer
            } else {
                Request r = to_request(parser.get());
                keep = parser.get().keep_alive();
                res = co_await asio::co_spawn(
                    pool, [&]() -> asio::awaitable<Response> { co_return handle(r); }, asio::use_awaitable);
            }
            bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), 11};
            out.set(bhttp::field::server, "mxlane");
            out.set(bhttp::field::content_type, res.content_type);
            for (const auto& [name, value] : res.fields) out.set(name, value);
            out.body() = std::move(res.body);
            out.keep_alive(keep);
            out.prepare_payload();
            stream.expires_after(std::chrono::seconds(kRequestTimeoutSeconds));
            auto [wec, wbytes] = co_await bhttp::async_write(stream, out, asio::as_tuple(asio::use_awaitable));
            (void)wbytes;
            if (wec || !keep) break;
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }

    Response handle(const Request& r) {
        try {
            return handler(r);
        } catch (const std::exception& e) {
            log::error("http_listen: " + r.method + " " + r.target + ": " + e.what());
            return {503, "text/plain; charset=utf-8", "temporarily unavailable, try again later\n", {}};
        }
    }
};

Server::Server(asio::io_context& io, int fd, Handler handler)
    : impl_(std::make_shared<Impl>(io, fd, std::move(handler))) {}

Server::~Server() { stop(); }

void Server::start() {
    asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
}

void Server::stop() {
    if (impl_->stopping.exchange(true)) return;
    asio::post(impl_->acceptor.get_executor(), [impl = impl_] {
        boost::system::error_code ignored;
        impl->acceptor.close(ignored);
    });
}

}  // namespace mxlane::qrunner::http
