// dns_records: blocking DNS questions for the sender checks, asked through mxlane's resolver, and the records read from its answers.
#pragma once
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "qrunner/dns/resolver.hpp"

namespace mxlane::compliance {

// How a name's records came back, classified once here (as the MX lookup does).
enum class Lookup { ok, no_data, not_found, error };

struct Records {
    Lookup status = Lookup::error;
    std::vector<std::string> values;  // TXT: the strings of each record joined (RFC 7208 3.3); A/AAAA: text form; PTR/MX: names, no trailing dot
    std::uint32_t ttl = 0;
};

// The records of `type` (ns_t_txt, ns_t_a, ns_t_aaaa, ns_t_ptr, ns_t_mx) in a reply.
Records records_of(const dns::Answer& answer, int type);

// The sender checks are plain sequential code (libspf2 asks its questions
// one by one and waits); each question runs a private io_context with
// mxlane's resolver until it is answered, so the dns_servers (and their
// ports) apply. Callers keep it off any event loop: mxlanectl, or the
// qrunner's checker thread.
class DnsClient {
public:
    virtual ~DnsClient() = default;
    virtual Records lookup(const std::string& name, int type) = 0;
};

class ResolverClient final : public DnsClient {
public:
    ResolverClient(const std::vector<std::string>& servers, std::chrono::milliseconds timeout);
    ~ResolverClient() override;
    Records lookup(const std::string& name, int type) override;
    // From any thread: the question in progress and every later one give Lookup::error.
    void stop();

private:
    std::atomic<bool> stopped_{false};
    boost::asio::io_context io_;
    dns::Resolver resolver_;
};

// "192.0.2.1" -> "1.2.0.192.in-addr.arpa", "::1" -> nibbles under ip6.arpa; "" when not an address.
std::string reverse_name(const std::string& address);
// The address in a canonical text form ("::1", "127.0.0.2"); "" when not an address.
std::string canonical_address(const std::string& address);

}  // namespace mxlane::compliance
