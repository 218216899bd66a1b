// webhook: the event_webhook sender, POSTing the spool's events in batches to the receiver, with backoff, off the delivery path.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "libshared/webhook_spool.hpp"

namespace mxlane::qrunner {

// event_webhook, parsed: http(s)://HOST[:PORT][/PATH].
struct WebhookUrl {
    bool tls = false;
    std::string host;  // without [ ] for an IPv6 literal
    std::string port;  // "80" / "443" unless given
    std::string target = "/";
    bool default_port = true;
};
// Throws std::invalid_argument saying what is wrong.
WebhookUrl parse_webhook_url(const std::string& url);

// "sha256=" and the HMAC-SHA256 of body under secret, in lower-case hex.
std::string webhook_signature(const std::string& secret, const std::string& body);

// Bounds of one POST: connect, request and response headers together; what
// of a response is read (its body is never stored).
constexpr auto kWebhookTimeout = std::chrono::seconds(30);
constexpr std::size_t kWebhookResponseLimit = 64 * 1024;
// Retries of a failed batch: the first after 1 s, doubling up to 5 min.
constexpr auto kWebhookRetryFirst = std::chrono::seconds(1);
constexpr auto kWebhookRetryMax = std::chrono::minutes(5);

// Sends what the spool holds, batch after batch, on its own strand: a slow or
// absent receiver never holds up delivery. Only a daemon sends (a --once run
// leaves the spool to the next daemon). At least once: a stop between a
// receiver's 2xx and the offset written sends that batch again.
class Webhook {
public:
    Webhook(boost::asio::io_context& io, WebhookSpool& spool, WebhookUrl url, std::string secret);
    void start();
    void stop();  // the loop ends at its next wait; a POST in flight is abandoned with the io_context
    // mxlane_webhook_backlog_bytes, mxlane_webhook_posts_total{result}.
    std::string metrics_text() const;

private:
    boost::asio::awaitable<void> run();
    // One POST: true on a 2xx; else `why` says what happened.
    boost::asio::awaitable<bool> post(const std::string& body, std::string& why);

    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    WebhookSpool& spool_;
    WebhookUrl url_;
    std::string secret_;
    boost::asio::steady_timer timer_;
    boost::asio::ssl::context tls_;  // https: peers verified against the system store
    std::atomic<bool> stopped_{false};
    std::atomic<std::uint64_t> posts_ok_{0};
    std::atomic<std::uint64_t> posts_failed_{0};
};

}  // namespace mxlane::qrunner
