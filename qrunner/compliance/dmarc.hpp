// dmarc: the DMARC policy record (RFC 7489 6.3) of a domain: found in DNS and parsed.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qrunner/compliance/dns_records.hpp"

namespace mxlane::compliance {

struct DmarcRecord {
    std::string policy;            // p=: none, quarantine, reject
    std::string subdomain_policy;  // sp= (the policy when absent)
    int percent = 100;             // pct=
    bool strict_dkim = false;      // adkim=s
    bool strict_spf = false;       // aspf=s
    std::vector<std::string> aggregate_reports;  // rua= URIs
};

struct DmarcParse {
    std::optional<DmarcRecord> record;
    std::string error;  // why the text is not a valid record, when record is empty
};

// One TXT record's text; the tags are case-insensitive, unknown tags ignored
// (RFC 7489 6.3), v=DMARC1 must come first and p= must be there.
DmarcParse parse_dmarc(std::string_view text);

struct DmarcLookup {
    std::string name;    // where the record was looked for (or found)
    Lookup status = Lookup::error;
    DmarcParse parse;    // record empty: none, several, or one that does not parse (error says which)
};

// _dmarc.DOMAIN, and when that has none, _dmarc of the domain's last two
// labels (RFC 7489 6.6.3's organizational domain, without a public suffix list).
DmarcLookup find_dmarc(DnsClient& dns, const std::string& domain);

}  // namespace mxlane::compliance
