// dns_records: blocking DNS questions for the sender checks, asked through mxlane's resolver, and the records read from its answers.
#include "qrunner/compliance/dns_records.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <boost/asio/co_spawn.hpp>

#include <algorithm>

namespace mxlane::compliance {

namespace asio = boost::asio;

namespace {

Lookup classify(int status) {
    switch (status) {
    case ARES_SUCCESS: return Lookup::ok;
    case ARES_ENODATA: return Lookup::no_data;
    case ARES_ENOTFOUND: return Lookup::not_found;
    default: return Lookup::error;
    }
}

// A domain name in rdata, uncompressed against the whole message.
std::string name_at(const ns_msg& msg, const unsigned char* where) {
    char name[NS_MAXDNAME];
    if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), where, name, sizeof name) < 0) return {};
    return name;
}

// RFC 7208 3.3: the character-strings of one TXT record are joined without spaces.
std::string txt_text(const unsigned char* p, std::size_t len) {
    std::string out;
    for (std::size_t i = 0; i < len;) {
        std::size_t n = p[i++];
        n = std::min(n, len - i);
        out.append(reinterpret_cast<const char*>(p + i), n);
        i += n;
    }
    return out;
}

std::string rdata_value(const ns_msg& msg, const ns_rr& rr, int type) {
    const unsigned char* p = ns_rr_rdata(rr);
    const std::size_t len = ns_rr_rdlen(rr);
    char text[INET6_ADDRSTRLEN] = {};
    switch (type) {
    case ns_t_a: return len == 4 && inet_ntop(AF_INET, p, text, sizeof text) ? text : "";
    case ns_t_aaaa: return len == 16 && inet_ntop(AF_INET6, p, text, sizeof text) ? text : "";
    case ns_t_txt: return txt_text(p, len);
    case ns_t_ptr: return name_at(msg, p);
    case ns_t_mx: return len > 2 ? name_at(msg, p + 2) : "";
    default: return {};
    }
}

}  // namespace

Records records_of(const dns::Answer& answer, int type) {
    Records out;
    out.status = classify(answer.status);
    if (out.status != Lookup::ok) return out;
    ns_msg msg;
    if (ns_initparse(answer.packet.data(), static_cast<int>(answer.packet.size()), &msg) < 0) {
        out.status = Lookup::error;
        return out;
    }
    out.ttl = answer.min_ttl().value_or(0);
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            out.status = Lookup::error;
            return out;
        }
        if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in) continue;  // CNAMEs on the way
        std::string value = rdata_value(msg, rr, type);
        if (!value.empty() || type == ns_t_txt) out.values.push_back(std::move(value));
    }
    if (out.values.empty()) out.status = Lookup::no_data;
    return out;
}

ResolverClient::ResolverClient(const std::vector<std::string>& servers, std::chrono::milliseconds timeout)
    : resolver_(io_, servers, timeout) {}

ResolverClient::~ResolverClient() { resolver_.shutdown(); }

void ResolverClient::stop() {
    stopped_ = true;
    io_.stop();
}

Records ResolverClient::lookup(const std::string& name, int type) {
    if (stopped_) return {};
    std::vector<dns::Answer> answers;
    std::exception_ptr failure;
    asio::co_spawn(io_, resolver_.query({dns::Question{name, type}}),
                   [&](std::exception_ptr e, std::vector<dns::Answer> a) {
                       failure = e;
                       answers = std::move(a);
                   });
    io_.restart();
    io_.run();  // the resolver holds work only while the question is pending
    if (failure) std::rethrow_exception(failure);
    if (stopped_ || answers.empty()) return {};
    return records_of(answers.front(), type);
}

std::string canonical_address(const std::string& address) {
    unsigned char bytes[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, address.c_str(), bytes) == 1) return inet_ntop(AF_INET, bytes, text, sizeof text);
    if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) return inet_ntop(AF_INET6, bytes, text, sizeof text);
    return {};
}

std::string reverse_name(const std::string& address) {
    unsigned char bytes[16];
    std::string out;
    if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
        for (int i = 3; i >= 0; --i) out += std::to_string(bytes[i]) + ".";
        return out + "in-addr.arpa";
    }
    if (inet_pton(AF_INET6, address.c_str(), bytes) != 1) return {};
    static const char* hex = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        out += hex[bytes[i] & 0xf];
        out += '.';
        out += hex[bytes[i] >> 4];
        out += '.';
    }
    return out + "ip6.arpa";
}

}  // namespace mxlane::compliance
