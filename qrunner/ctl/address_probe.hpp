// address_probe: is a mailbox there? MX lookup, then MAIL FROM:<> and RCPT TO at the best reachable MX, no DATA.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "libshared/smtp_reply.hpp"
#include "qrunner/dns/resolver.hpp"
#include "qrunner/settings.hpp"

namespace mxlane::ctl {

//   valid      the server took the RCPT (2xx)
//   invalid    it refused it for good (5xx), or the domain has no mail (NXDOMAIN, null MX)
//   unknown    no answer that decides: 4xx, timeout, no connection, DNS trouble
//   catch_all  2xx, but the domain also takes a made-up local part, so 2xx proves nothing
enum class Verdict { valid, invalid, unknown, catch_all };
std::string_view to_string(Verdict v);  // "valid", "invalid", "unknown", "catch-all"

struct ProbeResult {
    std::string address;
    Verdict verdict = Verdict::unknown;
    Reply reply;       // the server's (or a synthetic one saying what went wrong)
    std::string host;  // "mx1.example.com[192.0.2.7]:25" that answered; empty without a connection
};

// Probes the addresses of one domain over one connection (several transactions of
// at most max_recipients_per_transaction RCPTs when there are many), with a random
// local part in the first to detect a catch-all. Each results[i]->address is set;
// the rest is filled in.
boost::asio::awaitable<void> probe_domain(boost::asio::any_io_executor ex, dns::Resolver& resolver,
                                          const qrunner::Settings& settings, std::string domain,
                                          std::vector<ProbeResult*> results);

}  // namespace mxlane::ctl
