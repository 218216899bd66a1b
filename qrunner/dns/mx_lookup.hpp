// mx_lookup: mail routing by DNS (RFC 5321 5.1, RFC 7505) and the TTL cache of its results.
#pragma once
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mxlane::dns {

// The class of a lookup, decided here once (as Postfix's dns_lookup does);
// everything above the DNS layer works with it and never with c-ares codes.
//   ok         hosts filled
//   retry      SERVFAIL, timeout, refused, no server, malformed reply: temporary (4.4.3)
//   fail       permanent, e.g. every MX host lacks an address (5.4.4)
//   not_found  NXDOMAIN for the domain itself (5.1.2)
//   null_mx    the domain accepts no mail, RFC 7505 (5.1.10)
enum class Status { ok, retry, fail, not_found, null_mx };
const char* to_string(Status status);

struct MxHost {
    std::string name;  // lower case, no trailing dot
    int preference = 0;
    std::vector<boost::asio::ip::address> addresses;  // A and AAAA, in random order
};

struct MxResult {
    Status status = Status::retry;
    std::string dsn;    // enhanced status code for a failure; empty when ok
    std::string error;  // for the log, in Postfix's words
    std::vector<MxHost> hosts;  // preference ascending, equal preferences shuffled
    bool implicit = false;      // no MX: the domain's own address records (RFC 5321 5.1)

    // Names the MX set (its sorted host names) so that domains served by the
    // same hosts share one destination queue and one concurrency limit.
    std::string destination_key() const;
};

// What one c-ares status means for the name that was asked.
enum class Reply { answer, no_data, no_domain, temporary, bad_name };
Reply classify(int ares_status);

// A failed result with Postfix's text:
// "Host or domain name not found. Name service error for name=NAME type=TYPE: REASON".
MxResult failure(Status status, std::string dsn, std::string_view name, std::string_view type,
                 std::string_view reason);

// Lower case, trailing dot removed: the form used for cache keys and host names.
std::string normalize_domain(std::string_view domain);

// "[192.0.2.1]", "[IPv6:2001:db8::1]" (RFC 5321 4.1.3) or "[::1]" -> the address;
// anything else -> nullopt. Such a destination is used as is, without DNS.
std::optional<boost::asio::ip::address> address_literal(std::string_view domain);

// RFC 7505 3: a null MX is the only MX record and names the root (c-ares gives "").
bool is_null_mx(const std::vector<MxHost>& records);

// RFC 5321 5.1: lowest preference first; hosts of equal preference in random
// order so that the load spreads over them. Addresses are shuffled as well.
template <class Random>
void order_by_preference(std::vector<MxHost>& hosts, Random&& random) {
    std::shuffle(hosts.begin(), hosts.end(), random);
    std::stable_sort(hosts.begin(), hosts.end(),
                     [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
    for (MxHost& host : hosts) std::shuffle(host.addresses.begin(), host.addresses.end(), random);
}

// Results by name until their TTL runs out. Shared by all threads of the
// qrunner, hence the mutex; entries are small and lookups rare next to SMTP.
class MxCache {
public:
    using Clock = std::chrono::steady_clock;
    explicit MxCache(std::size_t max_entries = 100000) : max_entries_(max_entries) {}

    std::optional<MxResult> get(const std::string& key, Clock::time_point now = Clock::now()) const;
    // ttl <= 0 stores nothing.
    void put(const std::string& key, MxResult result, std::chrono::seconds ttl,
             Clock::time_point now = Clock::now());
    std::size_t size() const;

private:
    struct Entry {
        MxResult result;
        Clock::time_point expires;
    };
    void make_room(Clock::time_point now);

    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::size_t max_entries_;
};

// Lookups in progress by key: while one is out, later askers of the same
// name wait for its result instead of asking again (a bulk run asks for one
// domain many times at once).
class InFlight {
public:
    using Waiter = std::function<void(const MxResult&)>;
    // The first asker of key leads and gets true (waiter unused); later ones
    // get false and their waiter is called by the leader's finish().
    bool join(const std::string& key, Waiter waiter);
    void finish(const std::string& key, const MxResult& result);

private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::vector<Waiter>> waiting_;
};

}  // namespace mxlane::dns
