// dmarc: the DMARC policy record (RFC 7489 6.3) of a domain: found in DNS and parsed.
#include "qrunner/compliance/dmarc.hpp"

#include <arpa/nameser.h>

#include <charconv>

#include "libshared/address.hpp"
#include "libshared/text.hpp"

namespace mxlane::compliance {

namespace {

bool is_policy(std::string_view v) { return v == "none" || v == "quarantine" || v == "reject"; }

// One tag=value into r; an error text when the value is not allowed.
std::string apply_tag(DmarcRecord& r, const std::string& tag, std::string_view value) {
    const std::string v = to_lower(value);
    if (tag == "p" || tag == "sp") {
        if (!is_policy(v)) return tag + "=" + std::string(value) + " is not none, quarantine or reject";
        (tag == "p" ? r.policy : r.subdomain_policy) = v;
    } else if (tag == "pct") {
        int n = -1;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n < 0 || n > 100)
            return "pct=" + std::string(value) + " is not a number from 0 to 100";
        r.percent = n;
    } else if (tag == "adkim" || tag == "aspf") {
        if (v != "r" && v != "s") return tag + "=" + std::string(value) + " is not r or s";
        (tag == "adkim" ? r.strict_dkim : r.strict_spf) = v == "s";
    } else if (tag == "rua") {
        for (std::string_view rest = value; !rest.empty();) {
            auto comma = rest.find(',');
            std::string_view uri = trim(rest.substr(0, comma));
            if (uri.find(':') == std::string_view::npos) return "rua=" + std::string(value) + " is not a list of URIs";
            r.aggregate_reports.emplace_back(uri);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    return {};
}

}  // namespace

DmarcParse parse_dmarc(std::string_view text) {
    DmarcRecord r;
    bool first = true;
    for (std::string_view rest = text; !rest.empty();) {
        auto semi = rest.find(';');
        std::string_view item = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        if (item.empty()) continue;
        auto eq = item.find('=');
        if (eq == std::string_view::npos) return {std::nullopt, "\"" + std::string(item) + "\" is not tag=value"};
        const std::string tag = to_lower(trim(item.substr(0, eq)));
        const std::string_view value = trim(item.substr(eq + 1));
        if (first) {
            if (tag != "v" || value != "DMARC1") return {std::nullopt, "the record does not start with v=DMARC1"};
            first = false;
            continue;
        }
        if (std::string why = apply_tag(r, tag, value); !why.empty()) return {std::nullopt, why};
    }
    if (first) return {std::nullopt, "the record does not start with v=DMARC1"};
    if (r.policy.empty()) return {std::nullopt, "no p= tag (the policy)"};
    if (r.subdomain_policy.empty()) r.subdomain_policy = r.policy;
    return {r, {}};
}

namespace {

DmarcLookup dmarc_at(DnsClient& dns, const std::string& name) {
    DmarcLookup out;
    out.name = name;
    Records txt = dns.lookup(name, ns_t_txt);
    out.status = txt.status;
    std::vector<std::string> candidates;
    // RFC 7489 6.6.3: records that do not start with "v=DMARC1" are not DMARC records.
    for (const auto& t : txt.values)
        if (trim(t).starts_with("v=DMARC1")) candidates.push_back(t);
    if (out.status == Lookup::error) out.parse.error = "DNS lookup failed";
    else if (candidates.empty()) out.parse.error = "no DMARC record";
    else if (candidates.size() > 1) out.parse.error = "several DMARC records (RFC 7489 6.6.3: none applies)";
    else out.parse = parse_dmarc(candidates.front());
    return out;
}

}  // namespace

DmarcLookup find_dmarc(DnsClient& dns, const std::string& domain) {
    DmarcLookup own = dmarc_at(dns, "_dmarc." + domain);
    if (own.parse.record || own.status == Lookup::error || own.parse.error != "no DMARC record") return own;
    auto last_dot = domain.rfind('.');
    auto second = last_dot == std::string::npos || last_dot == 0 ? std::string::npos : domain.rfind('.', last_dot - 1);
    if (second == std::string::npos) return own;
    DmarcLookup org = dmarc_at(dns, "_dmarc." + domain.substr(second + 1));
    if (!org.parse.record && org.parse.error == "no DMARC record") return own;
    return org;
}

}  // namespace mxlane::compliance
