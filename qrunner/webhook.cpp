// webhook: the event_webhook sender, POSTing the spool's events in batches to the receiver, with backoff, off the delivery path.
#include "qrunner/webhook.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
// GCC 12 with the sanitizers (--enable-sanitizers) sees a boost::optional in
// Beast's response parser as maybe uninitialized (a false positive, under -Werror).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/printable.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

WebhookUrl parse_webhook_url(const std::string& url) {
    WebhookUrl u;
    std::string_view rest(url);
    if (rest.starts_with("https://")) {
        u.tls = true;
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else {
        throw std::invalid_argument("must start with http:// or https://: " + url);
    }
    for (unsigned char c : url)
        if (c < 0x21 || c > 0x7e) throw std::invalid_argument("character not allowed in a URL: " + url);
    if (url.find('#') != std::string::npos) throw std::invalid_argument("a fragment (#) is not sent: " + url);
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) u.target = std::string(rest.substr(slash));
    if (authority.find('@') != std::string_view::npos)
        throw std::invalid_argument("user information (user@) is not supported: " + url);
    std::string_view port;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("no ] after an IPv6 address: " + url);
        u.host = std::string(authority.substr(1, close - 1));
        const auto after = authority.substr(close + 1);
        if (!after.empty() && after[0] != ':') throw std::invalid_argument("text after ]: " + url);
        if (!after.empty()) port = after.substr(1);
        if (after == ":") throw std::invalid_argument("no port after ':': " + url);
        for (char c : u.host)
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
                throw std::invalid_argument("not an IPv6 address: " + url);
    } else {
        const auto colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) throw std::invalid_argument("no port after ':': " + url);
        }
        for (char c : u.host)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
                throw std::invalid_argument("character not allowed in a host name: " + url);
    }
    if (u.host.empty()) throw std::invalid_argument("no host: " + url);
    if (!port.empty()) {
        int n = 0;
        for (char c : port) {
            if (!std::isdigit(static_cast<unsigned char>(c)) || n > 65535)
                throw std::invalid_argument("port must be 1 to 65535: " + url);
            n = n * 10 + (c - '0');
        }
        if (n < 1 || n > 65535) throw std::invalid_argument("port must be 1 to 65535: " + url);
        u.port = std::to_string(n);
        u.default_port = false;
    } else {
        u.port = u.tls ? "443" : "80";
    }
    return u;
}

std::string webhook_signature(const std::string& secret, const std::string& body) {
    return "sha256=" + hmac_hex(secret, body);
}

Webhook::Webhook(asio::io_context& io, WebhookSpool& spool, WebhookUrl url, std::string secret)
    : strand_(asio::make_strand(io)),
      spool_(spool),
      url_(std::move(url)),
      secret_(std::move(secret)),
      timer_(strand_),
      tls_(asio::ssl::context::tls_client) {
    if (url_.tls) {
        tls_.set_default_verify_paths();
        tls_.set_verify_mode(asio::ssl::verify_peer);
    }
}

void Webhook::start() {
    asio::co_spawn(strand_, run(), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error(std::string("event_webhook: the sender stopped: ") + ex.what());
        }
    });
}

void Webhook::stop() {
    asio::post(strand_, [this] {
        stopped_ = true;
        timer_.cancel();
    });
}

std::string Webhook::metrics_text() const {
    return "# HELP mxlane_webhook_backlog_bytes Bytes of events in webhook.spool not yet acknowledged by the "
           "event_webhook receiver.\n# TYPE mxlane_webhook_backlog_bytes gauge\nmxlane_webhook_backlog_bytes " +
           std::to_string(spool_.backlog()) +
           "\n# HELP mxlane_webhook_posts_total POSTs of event batches to event_webhook, by result.\n"
           "# TYPE mxlane_webhook_posts_total counter\nmxlane_webhook_posts_total{result=\"ok\"} " +
           std::to_string(posts_ok_.load()) + "\nmxlane_webhook_posts_total{result=\"failed\"} " +
           std::to_string(posts_failed_.load()) + "\n";
}

asio::awaitable<void> Webhook::run() {
    using Steady = std::chrono::steady_clock;
    const std::string where = "event_webhook " + printable(url_.host) + ":" + url_.port;
    const auto age = std::chrono::milliseconds(kWebhookBatchAgeMs);
    const auto look = std::chrono::milliseconds(250);  // how often an idle sender looks at the spool
    Steady::duration delay = kWebhookRetryFirst;
    std::optional<Steady::time_point> first_seen;  // when the lines not yet sent were first seen
    bool failing = false;
    while (!stopped_) {
        std::optional<WebhookSpool::Batch> batch;
        std::string why;
        bool ok = false;
        try {
            batch = spool_.next();
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (!batch) first_seen.reset();
        if (batch && !first_seen) first_seen = Steady::now();
        // A batch that is not full waits for more lines until its first are `age` old
        // (fewer, bigger POSTs); a retry does not wait for that.
        if (batch && !batch->full && !failing && Steady::now() < *first_seen + age) {
            timer_.expires_at(*first_seen + age);
            co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (batch) {
            ok = co_await post(batch->body, why);
            if (ok) {
                ++posts_ok_;
                first_seen.reset();
                try {
                    spool_.acknowledge(*batch);
                } catch (const std::exception& e) {
                    ok = false;
                    why = std::string("the batch was taken but its offset cannot be kept: ") + e.what();
                }
            } else {
                ++posts_failed_;
            }
        }
        if (stopped_) break;
        if (ok) {
            if (failing) log::info(where + ": the receiver takes events again");
            failing = false;
            delay = kWebhookRetryFirst;
            continue;  // a full batch left behind goes at once
        }
        if (!why.empty() && !failing) {
            log::warning(where + ": cannot deliver events (" + printable(why) +
                         "); they wait in webhook.spool, retried with backoff");
            failing = true;
        }
        timer_.expires_after(why.empty() ? Steady::duration(look) : delay);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!why.empty()) delay = std::min<Steady::duration>(delay * 2, kWebhookRetryMax);
    }
}

namespace {

// Writes the request and reads the response's header (its body is not read:
// nothing of it matters, and a huge one costs nothing).
template <class Stream>
asio::awaitable<unsigned> send_request(Stream& stream, const http::request<http::string_body>& req) {
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buffer(kWebhookResponseLimit);
    http::response_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(kWebhookResponseLimit));
    parser.body_limit(boost::none);  // its Content-Length may say anything: the body is not read
    co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);
    co_return parser.get().result_int();
}

}  // namespace

asio::awaitable<bool> Webhook::post(const std::string& body, std::string& why) {
    const auto deadline = std::chrono::steady_clock::now() + kWebhookTimeout;
    http::request<http::string_body> req{http::verb::post, url_.target, 11};
    const bool v6 = url_.host.find(':') != std::string::npos;
    req.set(http::field::host, (v6 ? "[" + url_.host + "]" : url_.host) + (url_.default_port ? "" : ":" + url_.port));
    req.set(http::field::user_agent, "mxlane");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    if (!secret_.empty()) req.set("X-Mxlane-Signature", webhook_signature(secret_, body));
    req.body() = body;
    req.prepare_payload();
    unsigned status = 0;
    try {
        tcp::resolver resolver(strand_);
        // The lookup has no timer of its own; the rest of the POST is bounded by the deadline.
        auto found = co_await resolver.async_resolve(url_.host, url_.port, asio::use_awaitable);
        if (url_.tls) {
            beast::ssl_stream<beast::tcp_stream> stream(strand_, tls_);
            auto& lowest = beast::get_lowest_layer(stream);
            lowest.expires_at(deadline);
            co_await lowest.async_connect(found, asio::use_awaitable);
            boost::system::error_code not_ip;
            asio::ip::make_address(url_.host, not_ip);  // SNI names hosts, never addresses (RFC 6066)
            if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str()))
                throw std::runtime_error("cannot set the TLS server name");
            stream.set_verify_callback(asio::ssl::host_name_verification(url_.host));
            co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            status = co_await send_request(stream, req);
        } else {
            beast::tcp_stream stream(strand_);
            stream.expires_at(deadline);
            co_await stream.async_connect(found, asio::use_awaitable);
            status = co_await send_request(stream, req);
        }
    } catch (const boost::system::system_error& e) {
        why = e.code() == beast::error::timeout ? std::string("no answer within 30 s") : e.code().message();
        co_return false;
    } catch (const std::exception& e) {
        why = e.what();
        co_return false;
    }
    if (status >= 200 && status < 300) co_return true;
    why = "the receiver answered " + std::to_string(status);
    co_return false;
}

}  // namespace mxlane::qrunner
