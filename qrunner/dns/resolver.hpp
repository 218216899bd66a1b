// resolver: one c-ares channel driven by the qrunner's io_context; MX and host lookups as coroutines.
#pragma once
#include "qrunner/dns/mx_lookup.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mxlane::dns {

// One question as c-ares takes it: a name and a record type (ns_t_mx, ns_t_a, ns_t_aaaa).
struct Question {
    std::string name;
    int type = 0;
};

// One reply as received: c-ares's status (ARES_SUCCESS, ARES_ENOTFOUND, ...)
// and the raw message when there was one.
struct Answer {
    int status = 0;
    std::vector<unsigned char> packet;

    // The smallest TTL in the answer section; nullopt if there is none or the
    // message is malformed.
    std::optional<std::uint32_t> min_ttl() const;
    // RFC 2308 5: a negative answer lives min(SOA TTL, SOA MINIMUM) seconds;
    // nullopt without an SOA in the authority section.
    std::optional<std::uint32_t> negative_ttl() const;
};

// c-ares owns its sockets; the Resolver watches them with the io_context and
// keeps every call into the channel on one strand (c-ares 1.18 is not
// thread-safe per channel). The lookups may be co_awaited from any executor
// of that io_context. The Resolver must outlive the lookups it started.
class Resolver {
public:
    // servers: "ip[:port]" items ("[::1]:53" for IPv6), a comma-separated item
    // is split; empty: the system's servers (/etc/resolv.conf). timeout: per try.
    // Throws std::invalid_argument for a bad server list.
    Resolver(boost::asio::io_context& io, const std::vector<std::string>& servers,
             std::chrono::milliseconds timeout, int tries = 2);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // The mail exchangers of a domain (RFC 5321 5.1), from the cache while the
    // answer's TTL lasts; concurrent lookups of one name share one query.
    // "[192.0.2.1]" is used as is.
    boost::asio::awaitable<MxResult> mx_lookup(std::string domain);
    // A and AAAA of one host (relay_host "[host]", or an IP literal): one MxHost.
    boost::asio::awaitable<MxResult> host_lookup(std::string host);
    // Asks all questions at once; answers come in the same order. DNS errors
    // are in Answer::status, never thrown.
    boost::asio::awaitable<std::vector<Answer>> query(std::vector<Question> questions);

    // Ends pending queries (they give retry), cancels the timer and stops
    // watching sockets, so that io_context.run() can return. Later lookups
    // give retry at once. (With no query pending the resolver holds no work
    // on the io_context anyway.)
    void shutdown();

    const MxCache& cache() const { return cache_; }

private:
    class Channel;
    boost::asio::io_context& io_;
    std::shared_ptr<Channel> channel_;  // shared with the handlers waiting on it
    MxCache cache_;
    InFlight in_flight_;
};

}  // namespace mxlane::dns
