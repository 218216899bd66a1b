// report_text: reading the free text of reports: addresses, SMTP and enhanced status codes, typed field values.
#pragma once
#include <string>
#include <string_view>

namespace mxlane::report {

// Does `text` hold `phrase`, ignoring ASCII case?
bool contains_nocase(std::string_view text, std::string_view phrase);

// The first thing in `text` that looks like an address (local@domain with a
// dot-free or dotted domain), without <>, quotes or a "mailto:"; "" when none.
std::string find_address(std::string_view text);

// The first enhanced status code (RFC 3463 "class.subject.detail", class 2, 4
// or 5) standing on its own in `text` (not part of a longer number such as an
// IP address); "" when none.
std::string find_enhanced_code(std::string_view text);

// The first SMTP reply code 4xx or 5xx standing on its own in `text` (a word
// of three digits, maybe after "#"); 0 when none.
int find_reply_code(std::string_view text);

// The status a text gives: its enhanced code; else its reply code's class
// ("5.0.0", "4.0.0"); else `fallback`.
std::string status_in_text(std::string_view text, std::string_view fallback);

// A structured field value without its RFC 5322 comments ("(...)", nested,
// backslash escapes) and with white space runs as one space, trimmed.
std::string without_comments(std::string_view value);

// A typed value "type; text" (RFC 3464 2.1.2: address-type, diagnostic-type,
// mta-name-type) -> "text", trimmed; a value without a one-token type before
// its first ";" stays as it is.
std::string_view after_type(std::string_view value);

// "rfc822; <User@Example.test> (comment)" -> "User@Example.test"; a utf-8
// address has its "\x{HEX}" escapes undone (RFC 6533 3).
std::string typed_address(std::string_view value);

// "\x{7528}" -> the character in UTF-8 (RFC 6533 3, embedded-unicode-char);
// anything that is no valid escape of a Unicode scalar value stays as it is.
std::string unescape_unicode(std::string_view text);

}  // namespace mxlane::report
