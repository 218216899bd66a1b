// mx_lookup: RFC 5321 5.1 routing on top of the resolver's raw answers, classified once; the MX cache.
#include "qrunner/dns/mx_lookup.hpp"

#include "qrunner/dns/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>
#include <memory>
#include <random>

#include "libshared/address.hpp"

namespace mxlane::dns {

namespace asio = boost::asio;
using std::chrono::seconds;

const char* to_string(Status status) {
    switch (status) {
        case Status::ok: return "ok";
        case Status::retry: return "retry";
        case Status::fail: return "fail";
        case Status::not_found: return "not_found";
        case Status::null_mx: return "null_mx";
    }
    return "?";
}

std::string MxResult::destination_key() const {
    std::vector<std::string> names;
    for (const MxHost& host : hosts) names.push_back(host.name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::string key;
    for (const std::string& name : names) key += (key.empty() ? "" : ",") + name;
    return key;
}

Reply classify(int ares_status) {
    switch (ares_status) {
        case ARES_SUCCESS: return Reply::answer;
        case ARES_ENODATA: return Reply::no_data;
        case ARES_ENOTFOUND: return Reply::no_domain;
        case ARES_EBADNAME: return Reply::bad_name;
        // SERVFAIL, REFUSED, timeouts, connection errors, malformed replies
        // (EBADRESP, EFORMERR), no memory, cancelled: the next try may work.
        default: return Reply::temporary;
    }
}

MxResult failure(Status status, std::string dsn, std::string_view name, std::string_view type,
                 std::string_view reason) {
    MxResult result;
    result.status = status;
    result.dsn = std::move(dsn);
    result.error = "Host or domain name not found. Name service error for name=";
    result.error.append(name).append(" type=").append(type).append(": ").append(reason);
    return result;
}

std::string normalize_domain(std::string_view domain) {
    std::string out = to_lower(domain);
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

std::optional<asio::ip::address> address_literal(std::string_view domain) {
    if (domain.size() < 3 || domain.front() != '[' || domain.back() != ']') return std::nullopt;
    std::string inner(domain.substr(1, domain.size() - 2));
    bool tagged_v6 = inner.size() > 5 && normalize_domain(inner.substr(0, 5)) == "ipv6:";
    if (tagged_v6) inner.erase(0, 5);
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(inner, ec);
    if (ec || (tagged_v6 && !address.is_v6())) return std::nullopt;
    return address;
}

bool is_null_mx(const std::vector<MxHost>& records) {
    return records.size() == 1 && (records[0].name.empty() || records[0].name == ".");
}

// ---- cache ---------------------------------------------------------------

std::optional<MxResult> MxCache::get(const std::string& key, Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.expires <= now) return std::nullopt;
    return it->second.result;
}

void MxCache::put(const std::string& key, MxResult result, seconds ttl, Clock::time_point now) {
    if (ttl <= seconds(0)) return;
    std::lock_guard lock(mutex_);
    if (entries_.size() >= max_entries_ && !entries_.count(key)) make_room(now);
    entries_[key] = Entry{std::move(result), now + ttl};
}

std::size_t MxCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

// Expired entries go first; if that is not enough, everything goes. Crude,
// but bounded, and a bulk run asks for each domain in one burst anyway.
void MxCache::make_room(Clock::time_point now) {
    std::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
    if (entries_.size() >= max_entries_) entries_.clear();
}

bool InFlight::join(const std::string& key, Waiter waiter) {
    std::lock_guard lock(mutex_);
    auto [it, first] = waiting_.try_emplace(key);
    if (!first) it->second.push_back(std::move(waiter));
    return first;
}

void InFlight::finish(const std::string& key, const MxResult& result) {
    std::vector<Waiter> waiters;
    {
        std::lock_guard lock(mutex_);
        auto it = waiting_.find(key);
        if (it == waiting_.end()) return;
        waiters = std::move(it->second);
        waiting_.erase(it);
    }
    for (Waiter& waiter : waiters) waiter(result);
}

// ---- lookups -------------------------------------------------------------

namespace {

constexpr seconds max_ttl{3600};          // even a long TTL is looked at again hourly
constexpr seconds max_negative_ttl{300};  // a domain that appears is found soon
constexpr seconds default_negative_ttl{30};

struct Resolved {
    MxResult result;
    seconds ttl{0};  // how long the cache may keep it; 0: not at all
};

seconds positive_ttl(std::optional<std::uint32_t> ttl) {
    return ttl ? std::min(seconds(*ttl), max_ttl) : seconds(0);
}

seconds negative_ttl(const Answer& answer) {
    auto ttl = answer.negative_ttl();
    return ttl ? std::min(seconds(*ttl), max_negative_ttl) : default_negative_ttl;
}

std::string temporary_reason(int status) {
    return std::string("Host not found, try again (") + ares_strerror(status) + ")";
}

std::string permanent_reason(int status) {
    switch (status) {
        case ARES_ENOTFOUND: return "Host not found";
        case ARES_ENODATA: return "Host found but no data record of requested type";
        case ARES_EBADNAME: return "Malformed domain name";
        default: return ares_strerror(status);
    }
}

MxResult literal_result(const std::string& name, const asio::ip::address& address) {
    MxResult result;
    result.status = Status::ok;
    result.hosts.push_back(MxHost{name, 0, {address}});
    return result;
}

// Appends the addresses of an A or AAAA answer and lowers ttl to theirs
// (c-ares already folds in the TTLs of a CNAME chain). Returns the c-ares
// status of the answer or of its parse.
int parse_addresses(const Answer& answer, int type, std::vector<asio::ip::address>& out,
                    std::optional<std::uint32_t>& ttl) {
    if (answer.status != ARES_SUCCESS) return answer.status;
    const int len = static_cast<int>(answer.packet.size());
    hostent* host = nullptr;
    int rc = 0, n = 64;
    auto lower = [&ttl](int t) { ttl = std::min<std::uint32_t>(ttl.value_or(UINT32_MAX), std::max(t, 0)); };
    if (type == ns_t_a) {
        ares_addrttl found[64];
        rc = ares_parse_a_reply(answer.packet.data(), len, &host, found, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
            asio::ip::address_v4::bytes_type bytes;
            std::memcpy(bytes.data(), &found[i].ipaddr, bytes.size());
            out.push_back(asio::ip::address_v4(bytes));
            lower(found[i].ttl);
        }
    } else {
        ares_addr6ttl found[64];
        rc = ares_parse_aaaa_reply(answer.packet.data(), len, &host, found, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
            asio::ip::address_v6::bytes_type bytes;
            std::memcpy(bytes.data(), &found[i].ip6addr, bytes.size());
            out.push_back(asio::ip::address_v6(bytes));
            lower(found[i].ttl);
        }
    }
    if (host) ares_free_hostent(host);
    return rc;
}

// The addresses of one name from its A and AAAA answers.
struct NameAddresses {
    std::vector<asio::ip::address> addresses;
    std::optional<std::uint32_t> ttl;
    int status = ARES_SUCCESS;  // without addresses: why, the most telling of the two
    bool from_aaaa = false;     // that status is the AAAA query's
    const char* type() const { return from_aaaa ? "AAAA" : "A"; }
};

NameAddresses collect(const Answer& a, const Answer& aaaa) {
    NameAddresses found;
    int s4 = parse_addresses(a, ns_t_a, found.addresses, found.ttl);
    int s6 = parse_addresses(aaaa, ns_t_aaaa, found.addresses, found.ttl);
    // A temporary failure means absence proves nothing; then NXDOMAIN; then no data.
    auto rank = [](int s) { return classify(s) == Reply::temporary ? 0 : s == ARES_ENOTFOUND ? 1 : 2; };
    found.from_aaaa = rank(s6) < rank(s4);
    found.status = found.from_aaaa ? s6 : s4;
    return found;
}

// The A and AAAA records of one name as a single host at preference 0: the
// implicit MX of a domain without MX records (RFC 5321 5.1), and a relay host.
asio::awaitable<Resolved> resolve_single(Resolver& resolver, std::string name, bool implicit) {
    // (a named vector: g++ 12 miscompiles a braced list inside co_await)
    std::vector<Question> questions{{name, ns_t_a}, {name, ns_t_aaaa}};
    std::vector<Answer> answers = co_await resolver.query(std::move(questions));
    NameAddresses found = collect(answers[0], answers[1]);
    if (!found.addresses.empty()) {
        MxResult result;
        result.status = Status::ok;
        result.implicit = implicit;
        result.hosts.push_back(MxHost{name, 0, std::move(found.addresses)});
        co_return Resolved{std::move(result), positive_ttl(found.ttl)};
    }
    const Answer& telling = answers[found.from_aaaa ? 1 : 0];
    switch (classify(found.status)) {
        case Reply::temporary:
            co_return Resolved{failure(Status::retry, "4.4.3", name, found.type(), temporary_reason(found.status))};
        case Reply::no_domain:
            co_return Resolved{failure(Status::not_found, implicit ? "5.1.2" : "5.4.4", name, found.type(),
                                       permanent_reason(found.status)),
                               negative_ttl(telling)};
        default:
            co_return Resolved{failure(Status::fail, "5.4.4", name, found.type(), permanent_reason(found.status)),
                               negative_ttl(telling)};
    }
}

// MX records of an answer, names normalized, each name once at its lowest preference.
int parse_mx(const Answer& answer, std::vector<MxHost>& out) {
    ares_mx_reply* reply = nullptr;
    int rc = ares_parse_mx_reply(answer.packet.data(), static_cast<int>(answer.packet.size()), &reply);
    if (rc != ARES_SUCCESS) return rc;
    for (ares_mx_reply* mx = reply; mx; mx = mx->next)
        out.push_back(MxHost{normalize_domain(mx->host ? mx->host : ""), mx->priority, {}});
    ares_free_data(reply);
    std::sort(out.begin(), out.end(), [](const MxHost& a, const MxHost& b) {
        return a.name != b.name ? a.name < b.name : a.preference < b.preference;
    });
    out.erase(std::unique(out.begin(), out.end(), [](const MxHost& a, const MxHost& b) { return a.name == b.name; }),
              out.end());
    return ARES_SUCCESS;
}

// Addresses for every MX host at once. A host without addresses is skipped;
// with none left, the lookup is temporary if any skip was (RFC 5321 5.1:
// the next try may find them), else permanent.
asio::awaitable<Resolved> resolve_targets(Resolver& resolver, std::vector<MxHost> hosts,
                                          std::optional<std::uint32_t> ttl) {
    std::vector<Question> questions;
    for (const MxHost& host : hosts) {
        questions.push_back({host.name, ns_t_a});
        questions.push_back({host.name, ns_t_aaaa});
    }
    std::vector<Answer> answers = co_await resolver.query(std::move(questions));
    MxResult result;
    std::optional<MxResult> temporary, permanent;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        NameAddresses found = collect(answers[2 * i], answers[2 * i + 1]);
        if (!found.addresses.empty()) {
            hosts[i].addresses = std::move(found.addresses);
            if (found.ttl) ttl = std::min(ttl.value_or(*found.ttl), *found.ttl);
            result.hosts.push_back(std::move(hosts[i]));
        } else if (classify(found.status) == Reply::temporary) {
            if (!temporary)
                temporary = failure(Status::retry, "4.4.3", hosts[i].name, found.type(), temporary_reason(found.status));
        } else if (!permanent) {
            permanent = failure(Status::fail, "5.4.4", hosts[i].name, found.type(), permanent_reason(found.status));
        }
    }
    if (!result.hosts.empty()) {
        result.status = Status::ok;
        co_return Resolved{std::move(result), positive_ttl(ttl)};
    }
    if (temporary) co_return Resolved{std::move(*temporary)};
    co_return Resolved{std::move(*permanent), default_negative_ttl};
}

asio::awaitable<Resolved> resolve_mx(Resolver& resolver, std::string domain) {
    std::vector<Question> questions{{domain, ns_t_mx}};
    std::vector<Answer> answers = co_await resolver.query(std::move(questions));
    const Answer& answer = answers[0];
    switch (classify(answer.status)) {
        case Reply::answer: break;
        case Reply::no_data: co_return co_await resolve_single(resolver, domain, true);
        case Reply::no_domain:
            co_return Resolved{failure(Status::not_found, "5.1.2", domain, "MX", permanent_reason(answer.status)),
                               negative_ttl(answer)};
        case Reply::bad_name:
            co_return Resolved{failure(Status::fail, "5.1.2", domain, "MX", permanent_reason(answer.status))};
        case Reply::temporary:
            co_return Resolved{failure(Status::retry, "4.4.3", domain, "MX", temporary_reason(answer.status))};
    }
    std::vector<MxHost> records;
    int rc = parse_mx(answer, records);
    if (rc == ARES_ENODATA) co_return co_await resolve_single(resolver, domain, true);  // e.g. only a CNAME
    if (rc != ARES_SUCCESS)
        co_return Resolved{failure(Status::retry, "4.4.3", domain, "MX",
                                   std::string("Host not found, try again (malformed DNS reply: ") +
                                       ares_strerror(rc) + ")")};
    if (is_null_mx(records)) {
        MxResult result;
        result.status = Status::null_mx;
        result.dsn = "5.1.10";
        result.error = "Domain " + domain + " does not accept mail (nullMX)";
        co_return Resolved{std::move(result), positive_ttl(answer.min_ttl())};
    }
    // RFC 7505 3: a null MX must stand alone; beside real hosts it is ignored.
    std::erase_if(records, [](const MxHost& h) { return h.name.empty() || h.name == "."; });
    co_return co_await resolve_targets(resolver, std::move(records), answer.min_ttl());
}

std::mt19937& random_engine() {
    thread_local std::mt19937 engine{std::random_device{}()};
    return engine;
}

// Resumes with the leader's result, or with nullopt when the caller is the
// leader. Waiters resume on their own executors, never inside the leader.
asio::awaitable<std::optional<MxResult>> join_flight(InFlight& flights, std::string key) {
    auto initiate = [&flights, key](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto executor = asio::get_associated_executor(*shared);
        auto resume = [shared, executor](std::optional<MxResult> result) {
            asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        };
        if (flights.join(key, [resume](const MxResult& result) { resume(result); })) resume(std::nullopt);
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::optional<MxResult>)>(
        initiate, asio::use_awaitable);
}

// resolve runs only when neither the cache nor a lookup in flight has the
// answer (awaitables start when awaited). The order is shuffled on every use,
// so that equal preferences share the load.
asio::awaitable<MxResult> through_cache(MxCache& cache, InFlight& flights, std::string key,
                                        asio::awaitable<Resolved> resolve) {
    std::optional<MxResult> result = cache.get(key);
    if (!result) result = co_await join_flight(flights, key);
    if (!result) {
        try {
            Resolved resolved = co_await std::move(resolve);
            cache.put(key, resolved.result, resolved.ttl);
            result = std::move(resolved.result);
        } catch (const std::exception& e) {  // waiters must not wait forever
            MxResult failed;
            failed.dsn = "4.4.3";
            failed.error = std::string("DNS lookup failed: ") + e.what();
            flights.finish(key, failed);
            throw;
        }
        flights.finish(key, *result);
    }
    order_by_preference(result->hosts, random_engine());
    co_return std::move(*result);
}

}  // namespace

asio::awaitable<MxResult> Resolver::mx_lookup(std::string domain) {
    std::string name = normalize_domain(domain);
    if (auto literal = address_literal(name)) co_return literal_result(name, *literal);
    if (name.empty()) co_return failure(Status::fail, "5.1.2", domain, "MX", permanent_reason(ARES_EBADNAME));
    co_return co_await through_cache(cache_, in_flight_, "mx:" + name, resolve_mx(*this, name));
}

asio::awaitable<MxResult> Resolver::host_lookup(std::string host) {
    std::string name = normalize_domain(host);
    if (auto literal = address_literal(name)) co_return literal_result(name, *literal);
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(name, ec);
    if (!ec) co_return literal_result(name, address);
    if (name.empty()) co_return failure(Status::fail, "5.4.4", host, "A", permanent_reason(ARES_EBADNAME));
    co_return co_await through_cache(cache_, in_flight_, "host:" + name, resolve_single(*this, name, false));
}

}  // namespace mxlane::dns
