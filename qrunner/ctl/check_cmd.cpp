// check_cmd: mxlanectl check [DOMAIN...]: the sender's DNS and setup as the mailbox providers will see it, before sending.
#include <iostream>
#include <set>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "qrunner/compliance/sender_check.hpp"
#include "qrunner/compliance/tls_probe.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/dkim/signer.hpp"

namespace mxlane::ctl {
namespace {

dkim::KeyTable key_table(const Config& cfg) {
    const std::string table = cfg.get("dkim_key_table");
    if (table.empty()) return {};
    try {
        return dkim::KeyTable::load(table);
    } catch (const dkim::KeyError& e) {
        throw UsageError(std::string("dkim_key_table: ") + e.what());
    }
}

// The domains mail goes out as: the key table's, and the From: domains of
// the jobs that still have recipients to send.
std::vector<std::string> sending_domains(Context& c, const dkim::KeyTable& keys) {
    std::set<std::string> domains;
    for (const auto& k : keys.all()) domains.insert(k.domain);
    for (const auto& job : c.store().jobs()) {
        if (job.state != store::JobState::active || job.pending() == 0) continue;
        auto messages = c.store().messages(job.id);
        if (messages.empty()) continue;
        std::string d = dkim::from_domain(c.store().text(messages.front()));
        if (!d.empty() && d.find("{{") == std::string::npos) domains.insert(d);
    }
    return {domains.begin(), domains.end()};
}

void print(const Context& c, const std::vector<compliance::CheckRow>& rows) {
    if (c.json) {
        json::array all;
        for (const auto& r : rows)
            all.push_back(json::object{{"check", r.check}, {"subject", r.subject}, {"result", r.result}, {"detail", r.detail}});
        std::cout << json::serialize(std::move(all)) << "\n";
        return;
    }
    Table t({"CHECK", "SUBJECT", "RESULT", "DETAIL"});
    for (const auto& r : rows) t.add({r.check, r.subject, r.result, r.detail});
    std::cout << t.str();
}

}  // namespace

int cmd_check(Context& c) {
    for (const auto& a : c.args)
        if (a.starts_with("-")) throw UsageError("check: unknown option " + a);
    const dkim::KeyTable keys = key_table(c.cfg);
    std::vector<std::string> domains;
    for (const auto& a : c.args) domains.push_back(to_lower(a));
    if (domains.empty()) domains = sending_domains(c, keys);
    compliance::CheckSetup setup;
    setup.keys = &keys;
    try {
        setup.senders = compliance::senders_from(c.cfg.get("source_pools"));
    } catch (const std::runtime_error& e) {
        throw UsageError(std::string("source_pools: ") + e.what());
    }
    setup.helo_name = c.cfg.get("smtp_helo_name");
    setup.unsubscribe_address = c.cfg.get("unsubscribe_address");
    setup.unsubscribe_url = c.cfg.get("unsubscribe_url");
    compliance::ResolverClient dns(c.cfg.list("dns_servers"), std::chrono::seconds(c.cfg.seconds("dns_timeout")));
    auto rows = compliance::check_all(dns, setup, domains);
    auto tls = compliance::check_tls(*qrunner::Settings::load(c.cfg), c.cfg.list("check_tls_domains"));
    rows.insert(rows.end(), tls.begin(), tls.end());
    if (domains.empty()) rows.insert(rows.begin(), compliance::CheckRow{"domains", "-", "warn", "no sending domain: dkim_key_table is empty and no job is active"});
    print(c, rows);
    return compliance::any_failed(rows) ? 1 : 0;
}

}  // namespace mxlane::ctl
