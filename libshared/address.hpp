// address: mailbox parsing and domain extraction for envelope addresses.
#pragma once
#include <string>
#include <string_view>

namespace mxlane {

// Strips one pair of angle brackets and surrounding white space: "<a@b>" -> "a@b".
std::string strip_brackets(std::string_view text);

// True for local@domain with a non-empty local part and a plausible domain
// (labels of letters, digits, '-', or an address literal in brackets), no
// white space or control characters. UTF-8 is allowed (SMTPUTF8, RFC 6531).
bool valid_address(std::string_view address);

// Lower-cased domain part ("" when there is no '@').
std::string domain_of(std::string_view address);
std::string local_part_of(std::string_view address);

// Does `address` match a bulk_senders pattern: "user@dom", "@dom", or "dom"
// (the domain and its subdomains)? Case-insensitive.
bool address_matches(std::string_view address, std::string_view pattern);

std::string to_lower(std::string_view text);

}  // namespace mxlane
