// address_probe: is a mailbox there? MX lookup, then MAIL FROM:<> and RCPT TO at the best reachable MX, no DATA.
#include "qrunner/ctl/address_probe.hpp"

#include <algorithm>
#include <random>
#include <span>

#include "qrunner/mx_connect.hpp"
#include "qrunner/smtp/message_data.hpp"
#include "qrunner/smtp/session.hpp"

namespace mxlane::ctl {
namespace {

namespace asio = boost::asio;

void set_all(const std::vector<ProbeResult*>& results, Verdict v, const Reply& reply, const std::string& host) {
    for (auto* r : results) {
        r->verdict = v;
        r->reply = reply;
        r->host = host;
    }
}

// A local part nobody has: a server that takes it takes anything.
std::string made_up_local_part() {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::random_device rd;
    std::uniform_int_distribution<int> pick(0, sizeof chars - 2);
    std::string s = "mxlane-verify-";
    for (int i = 0; i < 16; ++i) s += chars[pick(rd)];
    return s;
}

// Only a server's own 5xx says the mailbox is not there; a reply mxlane made up
// (lost connection, SMTPUTF8 not offered) says nothing about it.
Verdict verdict_of(const Reply& r, bool catch_all) {
    if (r.positive()) return catch_all ? Verdict::catch_all : Verdict::valid;
    if (r.permanent() && !r.synthetic) return Verdict::invalid;
    return Verdict::unknown;
}

// One transaction: the made-up address first when asked, then results[at, at + n).
// Returns whether the made-up address was taken.
asio::awaitable<bool> probe_batch(smtp::Session& session, std::string made_up,
                                  std::span<ProbeResult* const> batch, bool catch_all) {
    smtp::Envelope env;
    env.stop_before_data = true;  // nothing is ever sent
    if (!made_up.empty()) env.rcpts.push_back(made_up);
    for (auto* r : batch) {
        env.rcpts.push_back(r->address);
        env.smtputf8 = env.smtputf8 || smtp::has_eight_bit(r->address);
    }
    auto res = co_await session.send(env, nullptr);
    std::size_t skip = made_up.empty() ? 0 : 1;
    if (skip) catch_all = res.mail.positive() && res.rcpts.at(0).positive();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i]->host = session.peer_name();
        // A refused MAIL FROM:<> is about us or the null sender, not about the mailbox.
        batch[i]->reply = res.mail.positive() ? res.rcpts.at(skip + i) : res.mail;
        batch[i]->verdict = res.mail.positive() ? verdict_of(batch[i]->reply, catch_all) : Verdict::unknown;
    }
    co_return catch_all;
}

}  // namespace

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::valid: return "valid";
        case Verdict::invalid: return "invalid";
        case Verdict::catch_all: return "catch-all";
        case Verdict::unknown: break;
    }
    return "unknown";
}

asio::awaitable<void> probe_domain(asio::any_io_executor ex, dns::Resolver& resolver,
                                   const qrunner::Settings& settings, std::string domain,
                                   std::vector<ProbeResult*> results) {
    if (results.empty()) co_return;
    auto mx = co_await resolver.mx_lookup(domain);
    if (mx.status != dns::Status::ok) {
        bool temporary = mx.status == dns::Status::retry;
        Reply reply = Reply::make(temporary ? 451 : 550, mx.dsn.empty() ? (temporary ? "4.4.3" : "5.1.2") : mx.dsn,
                                  mx.error);
        set_all(results, temporary ? Verdict::unknown : Verdict::invalid, reply, "");
        co_return;
    }
    qrunner::ConnectTarget target{mx.hosts, settings.smtp_port, domain, true};
    auto conn = co_await qrunner::connect_mx(ex, target, settings, settings.smtp_for(domain));
    if (!conn) {
        set_all(results, Verdict::unknown, conn.error, conn.peer);
        co_return;
    }
    // Servers cap RCPTs per transaction; the same cap as delivery keeps us under it.
    auto per_txn = static_cast<std::size_t>(std::max<std::int64_t>(2, settings.cfg.integer("max_recipients_per_transaction")));
    std::string made_up = made_up_local_part() + "@" + domain;
    bool catch_all = false;
    for (std::size_t at = 0; at < results.size();) {
        std::size_t n = std::min(results.size() - at, per_txn - (at == 0 ? 1 : 0));
        // Named, not a conditional temporary: GCC 12 destroys those twice across co_await.
        std::string extra = at == 0 ? made_up : std::string();
        std::span<ProbeResult* const> batch = std::span(results).subspan(at, n);
        catch_all = co_await probe_batch(*conn.session, std::move(extra), batch, catch_all);
        at += n;
    }
    co_await conn.session->quit();
}

}  // namespace mxlane::ctl
