// raw_io: a session's socket and TLS stream operations, before timeouts and protocol are added (session.cpp).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <tuple>

#include "qrunner/smtp/session.hpp"

namespace mxlane::smtp {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}  // namespace

awaitable<error_code> Session::raw_connect() {
    if (!opts_.source_address.empty()) {
        // A sending address of a pool: bound before connecting (checked bindable at start).
        error_code ec;
        auto source = asio::ip::make_address(opts_.source_address, ec);
        if (!ec) socket_.open(endpoint_.protocol(), ec);
        if (!ec) socket_.bind(asio::ip::tcp::endpoint(source, 0), ec);
        if (ec) co_return ec;
    }
    auto [ec] = co_await socket_.async_connect(endpoint_, tuple_awaitable);
    co_return ec;
}

awaitable<error_code> Session::raw_handshake() {
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    co_return ec;
}

awaitable<Session::RawRead> Session::raw_read() {
    RawRead out;
    for (;;) {
        out.status = parser_.next(out.reply);
        if (out.status != ReplyParser::Status::incomplete) co_return out;
        auto buf = asio::buffer(read_buffer_);
        // An if, not `tls_ ? co_await a : co_await b`: GCC 12 miscompiles
        // co_await inside a conditional expression.
        error_code ec;
        std::size_t n = 0;
        if (tls_) std::tie(ec, n) = co_await tls_->async_read_some(buf, tuple_awaitable);
        else std::tie(ec, n) = co_await socket_.async_read_some(buf, tuple_awaitable);
        if (ec) {
            out.ec = ec;
            co_return out;
        }
        parser_.feed(std::string_view(read_buffer_.data(), n));
    }
}

awaitable<error_code> Session::raw_write(Buffers buffers) {
    error_code ec;
    std::size_t n = 0;
    if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, buffers, tuple_awaitable);
    else std::tie(ec, n) = co_await asio::async_write(socket_, buffers, tuple_awaitable);
    (void)n;
    co_return ec;
}

}  // namespace mxlane::smtp
