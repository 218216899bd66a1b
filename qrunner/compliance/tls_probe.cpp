// tls_probe: mxlanectl check's tls rows: STARTTLS to a provider's first reachable MX, its certificate verified as delivery would.
#include "qrunner/compliance/tls_probe.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>

#include "qrunner/dns/resolver.hpp"
#include "qrunner/mx_connect.hpp"

namespace mxlane::compliance {

namespace {

namespace asio = boost::asio;
using std::chrono::seconds;

// A check must not wait the minutes delivery allows a slow server: a
// provider's MX answers in well under these, an unreachable one is offline.
constexpr seconds connect_limit{5}, reply_limit{10}, quit_limit{2};

// The first MX that answered and then failed (connect_mx goes on to the next
// one, as delivery does; the check reports what the first reachable one said).
struct FirstReached {
    bool seen = false;
    smtp::ConnectFailure failure = smtp::ConnectFailure::none;
    std::string why;
};

// A plain function, not a lambda in the coroutine (GCC 12 miscompiles those).
qrunner::ConnectHooks remember_first(FirstReached* first) {
    qrunner::ConnectHooks hooks;
    hooks.failed = [first](const smtp::ConnectResult& r) {
        if (first->seen || r.failure == smtp::ConnectFailure::none || r.failure == smtp::ConnectFailure::connect)
            return;
        *first = FirstReached{true, r.failure, r.error.text};
    };
    return hooks;
}

smtp::Options probe_options(const qrunner::Settings& s, const std::string& domain) {
    smtp::Options o = s.smtp_for(domain);
    o.tls = smtp::TlsLevel::verify;  // STARTTLS required and the certificate checked, whatever the level
    o.auth_user.clear();
    o.auth_password.clear();
    o.timeouts.connect = std::min(o.timeouts.connect, connect_limit);
    o.timeouts.helo = std::min(o.timeouts.helo, reply_limit);
    o.timeouts.quit = std::min(o.timeouts.quit, quit_limit);
    return o;
}

CheckRow from_failure(const std::string& domain, const FirstReached& first) {
    if (first.failure == smtp::ConnectFailure::tls) return {"tls", domain, "fail", first.why};
    // Refused, lost, out of protocol: the server said nothing about TLS.
    return {"tls", domain, "warn", "not verified: " + first.why};
}

asio::awaitable<CheckRow> probe(asio::any_io_executor ex, dns::Resolver& resolver, const qrunner::Settings& s,
                                std::string domain) {
    dns::MxResult mx = co_await resolver.mx_lookup(domain);
    if (mx.status != dns::Status::ok)
        co_return CheckRow{"tls", domain, "warn", "skipped: no MX of " + domain + " known (" + mx.error + "): unreachable (offline?)"};
    qrunner::ConnectTarget target{mx.hosts, s.smtp_port, domain, true};
    FirstReached first;
    const qrunner::ConnectHooks hooks = remember_first(&first);
    smtp::ConnectResult conn;
    try {
        conn = co_await qrunner::connect_mx(ex, target, s, probe_options(s, domain), hooks);
    } catch (const std::exception& e) {  // e.g. the CA file cannot be read
        co_return CheckRow{"tls", domain, "fail", e.what()};
    }
    if (first.seen) {
        if (conn) co_await conn.session->quit();
        co_return from_failure(domain, first);
    }
    if (!conn) {
        if (conn.failure != smtp::ConnectFailure::connect && conn.failure != smtp::ConnectFailure::none)
            co_return from_failure(domain, FirstReached{true, conn.failure, conn.error.text});
        co_return CheckRow{"tls", domain, "warn", "skipped: no MX of " + domain + " reachable (" + conn.error.text + "): unreachable (offline?)"};
    }
    CheckRow row{"tls", domain, "pass",
                 conn.session->peer_name() + ": " + conn.session->tls_summary() +
                     ", the certificate verified (its chain and the MX name)"};
    co_await conn.session->quit();
    co_return row;
}

CheckRow probe_failed(const std::string& domain, std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return {"tls", domain, "warn", std::string("not verified: the probe failed: ") + x.what()};
    } catch (...) {
        return {"tls", domain, "warn", "not verified: the probe failed"};
    }
}

}  // namespace

std::vector<CheckRow> check_tls(const qrunner::Settings& s, const std::vector<std::string>& domains) {
    std::vector<CheckRow> rows(domains.size());
    asio::io_context io;
    dns::Resolver resolver(io, s.cfg.list("dns_servers"), seconds(s.cfg.seconds("dns_timeout")));
    std::size_t running = domains.size();
    for (std::size_t i = 0; i < domains.size(); ++i)
        asio::co_spawn(io, probe(io.get_executor(), resolver, s, domains[i]),
                       [&rows, &running, &resolver, &domains, i](std::exception_ptr e, CheckRow row) {
                           rows[i] = e ? probe_failed(domains[i], e) : std::move(row);
                           if (--running == 0) resolver.shutdown();  // lets io.run() return
                       });
    io.run();
    return rows;
}

}  // namespace mxlane::compliance
