// spf: RFC 7208 evaluation of a domain's SPF policy for one sending address (libspf2, asking mxlane's resolver).
#pragma once
#include <string>

#include "qrunner/compliance/dns_records.hpp"

namespace mxlane::compliance {

struct SpfVerdict {
    std::string result;  // RFC 7208 2.6: pass, fail, softfail, neutral, none, permerror, temperror
    std::string detail;  // why, in libspf2's words (the record's problem for permerror)
};

// What a receiver computes for MAIL FROM:<postmaster@domain> from `address`:
// includes, a, mx, ptr, exists, redirect, macros, and the limit of 10
// DNS-querying terms (RFC 7208 4.6.4). Every question goes to `dns`.
SpfVerdict spf_evaluate(DnsClient& dns, const std::string& domain, const std::string& address);

}  // namespace mxlane::compliance
