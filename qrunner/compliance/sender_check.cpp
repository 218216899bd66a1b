// sender_check: what the big mailbox providers check of a sender before they accept bulk mail, checked from here first.
#include "qrunner/compliance/sender_check.hpp"

#include <arpa/nameser.h>

#include <algorithm>
#include <map>

#include "libshared/address.hpp"
#include "libshared/source_pools.hpp"
#include "libshared/text.hpp"
#include "qrunner/compliance/dmarc.hpp"
#include "qrunner/compliance/spf.hpp"

namespace mxlane::compliance {

namespace {

// A DKIM key record's tags (RFC 6376 3.6.1); white space inside values (a
// long p= split over strings) is dropped, as verifiers do.
std::map<std::string, std::string> dkim_tags(std::string_view text) {
    std::map<std::string, std::string> tags;
    for (std::string_view rest = text; !rest.empty();) {
        auto semi = rest.find(';');
        std::string_view item = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) continue;
        std::string value;
        for (char c : item.substr(eq + 1))
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;
        tags.emplace(to_lower(trim(item.substr(0, eq))), value);
    }
    return tags;
}

CheckRow dkim_row(DnsClient& dns, const dkim::Key& key) {
    const std::string name = key.selector + "._domainkey." + key.domain;
    CheckRow row{"dkim", name, "fail", ""};
    Records txt = dns.lookup(name, ns_t_txt);
    if (txt.status == Lookup::error) return {"dkim", name, "warn", "DNS lookup failed: the record is not known"};
    if (txt.status != Lookup::ok) {
        row.detail = "no TXT record; publish: " + key.txt_record();
        return row;
    }
    const std::string want_k = key.algorithm == dkim::Algorithm::rsa ? "rsa" : "ed25519";
    for (const auto& t : txt.values) {
        auto tags = dkim_tags(t);
        if (!tags.contains("p")) continue;
        if (tags["p"].empty()) {
            row.detail = "p= is empty: the key is revoked (RFC 6376 3.6.1)";
            continue;
        }
        const std::string k = tags.contains("k") ? to_lower(tags["k"]) : "rsa";
        if (tags["p"] == key.public_key && k == want_k) {
            row.result = "pass";
            row.detail = "the published key is " + key.file + "'s (" + key.algorithm_name() + ")";
            return row;
        }
        row.detail = "the published key is not " + key.file + "'s; publish: " + key.txt_record();
    }
    if (row.detail.empty()) row.detail = "no DKIM key record (no p= tag) among its TXT records";
    return row;
}

std::vector<CheckRow> dkim_rows(DnsClient& dns, const CheckSetup& setup, const std::string& domain) {
    std::string signing;
    const auto* keys = setup.keys ? setup.keys->keys_for(domain, &signing) : nullptr;
    if (!keys) return {{"dkim", domain, "fail", "no key in dkim_key_table for " + domain + " or a parent: mail goes unsigned"}};
    std::vector<CheckRow> rows;
    for (const auto& key : *keys) rows.push_back(dkim_row(dns, key));
    return rows;
}

CheckRow dmarc_row(DnsClient& dns, const std::string& domain) {
    DmarcLookup found = find_dmarc(dns, domain);
    if (found.status == Lookup::error) return {"dmarc", found.name, "warn", "DNS lookup failed: the record is not known"};
    if (!found.parse.record) return {"dmarc", found.name, "fail", found.parse.error};
    const DmarcRecord& r = *found.parse.record;
    std::string detail = "p=" + r.policy + (r.subdomain_policy != r.policy ? " sp=" + r.subdomain_policy : "") +
                         (r.percent != 100 ? " pct=" + std::to_string(r.percent) : "");
    detail += r.aggregate_reports.empty() ? ", no rua= (no aggregate reports)" : ", rua=" + r.aggregate_reports.front();
    return {"dmarc", found.name, "pass", detail};
}

// Without pools the system's address is only assumed: a failure there is a warning.
CheckRow assumed(CheckRow row, const SendingAddresses& from) {
    if (!from.assumed) return row;
    if (row.result == "fail") row.result = "warn";
    row.detail += " (" + from.note + ")";
    return row;
}

std::vector<CheckRow> spf_rows(DnsClient& dns, const SendingAddresses& from, const std::string& domain) {
    std::vector<CheckRow> rows;
    if (from.senders.empty()) {
        rows.push_back({"spf", domain, "warn", "not evaluated: " + from.note});
        return rows;
    }
    for (const auto& s : from.senders) {
        SpfVerdict v = spf_evaluate(dns, domain, s.address);
        const std::string result = v.result == "pass" ? "pass" : v.result == "temperror" ? "warn" : "fail";
        std::string detail = v.result == "pass"   ? domain + "'s SPF allows " + s.address
                             : v.result == "none" ? "no SPF record (v=spf1) at " + domain
                                                  : v.result + ": " + domain + "'s SPF does not allow " + s.address;
        if (!v.detail.empty() && v.result != "none") detail += " (" + v.detail + ")";
        rows.push_back(assumed({"spf", domain + " from " + s.address, result, detail}, from));
    }
    return rows;
}

std::string without_dot(std::string name) {
    if (!name.empty() && name.back() == '.') name.pop_back();
    return to_lower(name);
}

// RFC 8601 / M3AAWG: the PTR name resolves back to the address (FCrDNS), and
// receivers compare it with the EHLO name.
CheckRow ptr_row(DnsClient& dns, const Sender& s) {
    const std::string address = canonical_address(s.address);
    CheckRow row{"ptr", s.address, "fail", ""};
    Records ptr = dns.lookup(reverse_name(s.address), ns_t_ptr);
    if (ptr.status == Lookup::error) return {"ptr", s.address, "warn", "DNS lookup failed: the PTR is not known"};
    if (ptr.status != Lookup::ok) {
        row.detail = "no PTR record (" + reverse_name(s.address) + ")";
        return row;
    }
    const int type = address.find(':') == std::string::npos ? ns_t_a : ns_t_aaaa;
    std::vector<std::string> confirmed;
    for (const auto& name : ptr.values) {
        Records forward = dns.lookup(name, type);
        if (std::find(forward.values.begin(), forward.values.end(), address) != forward.values.end())
            confirmed.push_back(without_dot(name));
    }
    if (confirmed.empty()) {
        row.detail = "the PTR name " + ptr.values.front() + " does not resolve back to " + s.address;
        return row;
    }
    if (std::find(confirmed.begin(), confirmed.end(), without_dot(s.helo)) == confirmed.end()) {
        row.detail = "the PTR name " + confirmed.front() + " is not the HELO name " + s.helo;
        return row;
    }
    return {"ptr", s.address, "pass", without_dot(s.helo) + ", forward-confirmed, the HELO name"};
}

}  // namespace

SendingAddresses sending_addresses(DnsClient& dns, const CheckSetup& setup) {
    SendingAddresses out;
    if (!setup.senders.empty()) {
        out.senders = setup.senders;
        return out;
    }
    out.assumed = true;
    if (!setup.helo_name.empty())
        for (int type : {ns_t_a, ns_t_aaaa})
        for (const auto& a : dns.lookup(setup.helo_name, type).values) out.senders.push_back({a, setup.helo_name});
    out.note = out.senders.empty()
                   ? "no source_pools: the system picks the sending address, and the HELO name " + setup.helo_name +
                         " has no address to check instead"
                   : "no source_pools: assumed to send from the address of the HELO name " + setup.helo_name;
    return out;
}

std::vector<CheckRow> check_domain(DnsClient& dns, const CheckSetup& setup, const SendingAddresses& from,
                                   const std::string& domain) {
    std::vector<CheckRow> rows = dkim_rows(dns, setup, domain);
    auto spf = spf_rows(dns, from, domain);
    rows.insert(rows.end(), spf.begin(), spf.end());
    rows.push_back(dmarc_row(dns, domain));
    return rows;
}

std::vector<CheckRow> check_addresses(DnsClient& dns, const SendingAddresses& from) {
    std::vector<CheckRow> rows;
    if (from.senders.empty()) rows.push_back({"ptr", "-", "warn", "not checked: " + from.note});
    for (const auto& s : from.senders) rows.push_back(assumed(ptr_row(dns, s), from));
    return rows;
}

std::vector<CheckRow> check_setup(const CheckSetup& setup) {
    std::vector<CheckRow> rows;
    if (!setup.unsubscribe_url.empty())
        rows.push_back({"unsubscribe", "List-Unsubscribe", "pass",
                        "one-click (RFC 8058) by unsubscribe_url" +
                            (setup.unsubscribe_address.empty() ? std::string() : ", and mailto by unsubscribe_address")});
    else if (!setup.unsubscribe_address.empty())
        rows.push_back({"unsubscribe", "List-Unsubscribe", "warn",
                        "mailto only (unsubscribe_address): Gmail and Yahoo want one-click, set unsubscribe_url (RFC 8058)"});
    else
        rows.push_back({"unsubscribe", "List-Unsubscribe", "fail",
                        "neither unsubscribe_url nor unsubscribe_address is set: bulk mail has no List-Unsubscribe"});
    return rows;
}

std::vector<CheckRow> check_all(DnsClient& dns, const CheckSetup& setup, const std::vector<std::string>& domains) {
    SendingAddresses from = sending_addresses(dns, setup);
    std::vector<CheckRow> rows;
    for (const auto& d : domains) {
        auto more = check_domain(dns, setup, from, d);
        rows.insert(rows.end(), more.begin(), more.end());
    }
    auto ptr = check_addresses(dns, from);
    rows.insert(rows.end(), ptr.begin(), ptr.end());
    auto rest = check_setup(setup);
    rows.insert(rows.end(), rest.begin(), rest.end());
    return rows;
}

std::vector<Sender> senders_from(const std::string& source_pools_file) {
    std::vector<Sender> out;
    if (source_pools_file.empty()) return out;
    for (const auto& a : load_source_pools(source_pools_file).addresses) out.push_back({a.address, a.helo});
    return out;
}

bool any_failed(const std::vector<CheckRow>& rows) {
    return std::any_of(rows.begin(), rows.end(), [](const CheckRow& r) { return r.result == "fail"; });
}

std::string failures_text(const std::vector<CheckRow>& rows) {
    std::string out;
    for (const auto& r : rows)
        if (r.result == "fail") out += (out.empty() ? "" : "; ") + r.check + " " + r.subject + ": " + r.detail;
    return out;
}

}  // namespace mxlane::compliance
