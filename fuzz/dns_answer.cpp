// fuzz target dns_answer: any DNS message a server sends is read for TTLs, MX and address records without
// crashing, and classified: a packet c-ares cannot parse is a temporary failure, never an answer.
#include <ares.h>
#include <arpa/nameser.h>

#include <cstring>
#include <random>

#include "fuzz/fuzz_input.hpp"
#include "qrunner/dns/mx_lookup.hpp"
#include "qrunner/dns/resolver.hpp"

using namespace mxlane::dns;

namespace {

// What resolve_mx does with an MX answer: c-ares parses, names are normalized,
// a lone root target is a null MX (RFC 7505), otherwise the hosts are ordered.
void mx_records(const std::vector<unsigned char>& packet) {
    ares_mx_reply* reply = nullptr;
    int rc = ares_parse_mx_reply(packet.data(), static_cast<int>(packet.size()), &reply);
    if (rc != ARES_SUCCESS) {
        if (reply) __builtin_trap();
        // Anything but "no MX records here" is a malformed reply: the lookup is retried (4.4.3).
        return;
    }
    std::vector<MxHost> hosts;
    for (ares_mx_reply* mx = reply; mx; mx = mx->next)
        hosts.push_back(MxHost{normalize_domain(mx->host ? mx->host : ""), mx->priority, {}});
    ares_free_data(reply);
    bool null_mx = is_null_mx(hosts);
    if (null_mx && hosts.size() != 1) __builtin_trap();
    for (const MxHost& h : hosts) (void)address_literal(h.name);
    std::minstd_rand random(static_cast<unsigned>(hosts.size()));
    order_by_preference(hosts, random);
    for (std::size_t i = 1; i < hosts.size(); ++i)
        if (hosts[i - 1].preference > hosts[i].preference) __builtin_trap();
}

void address_records(const std::vector<unsigned char>& packet) {
    const int len = static_cast<int>(packet.size());
    hostent* host = nullptr;
    ares_addrttl a[64];
    int n = 64;
    if (ares_parse_a_reply(packet.data(), len, &host, a, &n) == ARES_SUCCESS && (n < 0 || n > 64)) __builtin_trap();
    if (host) ares_free_hostent(host);
    host = nullptr;
    ares_addr6ttl aaaa[64];
    n = 64;
    if (ares_parse_aaaa_reply(packet.data(), len, &host, aaaa, &n) == ARES_SUCCESS && (n < 0 || n > 64))
        __builtin_trap();
    if (host) ares_free_hostent(host);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Answer answer;
    answer.status = ARES_SUCCESS;
    answer.packet.assign(data, data + size);
    (void)answer.min_ttl();
    (void)answer.negative_ttl();
    mx_records(answer.packet);
    address_records(answer.packet);
    (void)classify(size ? data[0] % 30 : 0);
    return 0;
}
