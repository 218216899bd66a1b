// mx_connect: the one MX connect loop (delivery and verify): hosts in order, Postfix's limits, prohibited networks.
#include "qrunner/mx_connect.hpp"

#include <optional>

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

bool source_family_fits(const std::string& source, const asio::ip::address& peer) {
    if (source.empty()) return true;
    boost::system::error_code ec;
    auto a = asio::ip::make_address(source, ec);
    return ec || a.is_v4() == peer.is_v4();
}

}  // namespace

asio::awaitable<smtp::ConnectResult> connect_mx(asio::any_io_executor ex, const ConnectTarget& target,
                                                const Settings& s, smtp::Options opts, const ConnectHooks& hooks) {
    smtp::ConnectResult last;
    last.error = Reply::make(451, "4.4.4", "no mail host to try for " + target.name);
    std::optional<smtp::ConnectResult> throttled;
    if (target.by_mx) {
        // A server that names itself as this host is this host: a loop (the relay is exempt).
        opts.loop_name = s.myhostname;
        opts.next_hop = target.name;
    }
    int addresses = 0, sessions = 0;
    auto limit_reached = [&] {
        return (s.mx_address_limit > 0 && addresses >= s.mx_address_limit) ||
               (s.mx_session_limit > 0 && sessions >= s.mx_session_limit);
    };
    for (const auto& host : target.hosts) {
        if (limit_reached()) break;
        for (const auto& addr : host.addresses) {
            if (target.by_mx && s.prohibited_networks.contains(addr.to_string())) {
                // Postfix-like wording; the log says which address and why.
                last = smtp::ConnectResult{};
                last.peer = host.name + "[" + addr.to_string() + "]:" + std::to_string(target.port);
                last.error = Reply::make(451, "4.4.4",
                                         "MX host " + host.name + "[" + addr.to_string() +
                                             "] is in smtp_prohibited_networks: not connected to");
                if (hooks.failed) hooks.failed(last);
                continue;
            }
            if (!source_family_fits(opts.source_address, addr)) {
                // An IPv4 sending address cannot reach an IPv6 host, nor the other way round.
                last = smtp::ConnectResult{};
                last.peer = host.name + "[" + addr.to_string() + "]:" + std::to_string(target.port);
                last.error = Reply::make(451, "4.4.4",
                                         "MX host " + host.name + "[" + addr.to_string() +
                                             "] is of another address family than source address " +
                                             opts.source_address);
                continue;
            }
            if (limit_reached()) break;
            ++addresses;
            opts.tls_server_name = host.name;
            auto r = co_await smtp::Session::open(
                ex, asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(target.port)), host.name, opts);
            if (r || r.failure == smtp::ConnectFailure::loop) co_return r;  // every MX of ours loops too
            if (r.stage != smtp::Stage::connect) ++sessions;  // the server answered, then refused or failed
            if (hooks.failed) hooks.failed(r);
            if (!throttled && hooks.throttling && hooks.throttling(r.error)) throttled = std::move(r);
            else last = std::move(r);
        }
    }
    co_return throttled ? std::move(*throttled) : std::move(last);
}

}  // namespace mxlane::qrunner
