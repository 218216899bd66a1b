// mx_connect: the one MX connect loop (delivery and verify): hosts in order, Postfix's limits, prohibited networks.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <vector>

#include "qrunner/dns/mx_lookup.hpp"
#include "qrunner/settings.hpp"
#include "qrunner/smtp/session.hpp"

namespace mxlane::qrunner {

struct ConnectTarget {
    std::vector<dns::MxHost> hosts;  // in the order to try (RFC 5321 5.1)
    int port = 25;
    std::string name;                // the recipient domain or the relay label, for messages
    bool by_mx = true;               // false for the relay host: smtp_prohibited_networks does not apply
};

struct ConnectHooks {
    // Each host or address that fails (for the log); may be empty.
    std::function<void(const smtp::ConnectResult&)> failed;
    // A reply that says "too many": preferred as the result when every host failed,
    // so that the destination backs off instead of being called unreachable.
    std::function<bool(const Reply&)> throttling;
};

// Tries the target's addresses in order until one takes a session: at most
// smtp_mx_address_limit addresses and smtp_mx_session_limit established
// sessions (Postfix's limits: 301 MX records are not 301 connections), never
// an address in smtp_prohibited_networks (by MX only). `opts` serve every
// host; each gets its own TLS server name. A refusal (4xx/5xx greeting or
// EHLO) moves on to the next host like a refused connection does; the result
// when all failed is the last failure (or the first throttling one). A server
// reached by MX that greets or answers EHLO with this host's myhostname ends
// the loop at once: ConnectFailure::loop, 554 5.4.6 (RFC 5321 5.1).
boost::asio::awaitable<smtp::ConnectResult> connect_mx(boost::asio::any_io_executor ex, const ConnectTarget& target,
                                                       const Settings& settings, smtp::Options opts,
                                                       const ConnectHooks& hooks = {});

}  // namespace mxlane::qrunner
