// sender_check: what the big mailbox providers check of a sender before they accept bulk mail, checked from here first.
#pragma once
#include <string>
#include <vector>

#include "qrunner/compliance/dns_records.hpp"
#include "qrunner/dkim/key_table.hpp"

namespace mxlane::compliance {

// One line of mxlanectl check: check is dkim, spf, dmarc, ptr, unsubscribe or tls.
struct CheckRow {
    std::string check, subject, result, detail;  // result: pass, fail, warn
};

// One address mail leaves from, with the name it gives in EHLO.
struct Sender {
    std::string address, helo;
};

struct CheckSetup {
    const dkim::KeyTable* keys = nullptr;  // dkim_key_table (may be empty)
    std::vector<Sender> senders;           // source_pools' addresses; empty: the system picks the address
    std::string helo_name;                 // smtp_helo_name, for the system's address
    std::string unsubscribe_address, unsubscribe_url;
};

// The addresses check_domain and check_addresses use: source_pools', or
// without pools those of the HELO name (assumed: their failures are warnings).
struct SendingAddresses {
    std::vector<Sender> senders;
    bool assumed = false;
    std::string note;  // said in the rows' detail when assumed or none
};
SendingAddresses sending_addresses(DnsClient& dns, const CheckSetup& setup);

// DKIM, DMARC and SPF of one From: domain, SPF for every sending address.
// A DNS failure gives warn (nothing known), a wrong or missing record fail.
std::vector<CheckRow> check_domain(DnsClient& dns, const CheckSetup& setup, const SendingAddresses& from,
                                   const std::string& domain);

// Forward-confirmed reverse DNS of every sending address, equal to its EHLO name.
std::vector<CheckRow> check_addresses(DnsClient& dns, const SendingAddresses& from);

// What does not depend on DNS here: List-Unsubscribe.
std::vector<CheckRow> check_setup(const CheckSetup& setup);

// Everything about these domains, in the order mxlanectl check shows it
// (mxlanectl adds the tls rows, tls_probe.hpp: they are about this host's
// TLS towards the providers, not about a sending domain).
std::vector<CheckRow> check_all(DnsClient& dns, const CheckSetup& setup, const std::vector<std::string>& domains);

// The addresses of a source_pools file (every pool's); "" gives none.
// Throws std::runtime_error("FILE:LINE: problem").
std::vector<Sender> senders_from(const std::string& source_pools_file);

bool any_failed(const std::vector<CheckRow>& rows);
// The failed rows as one line: "spf shop.test from 127.0.0.4: fail ...; dmarc ...".
std::string failures_text(const std::vector<CheckRow>& rows);

}  // namespace mxlane::compliance
