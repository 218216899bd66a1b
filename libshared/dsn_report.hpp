// dsn_report: delivery status notifications read: RFC 3464/6533 reports, and the common non-standard bounces.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// One recipient's part of a delivery status notification.
struct DsnRecipient {
    std::string final_recipient;     // address, without "rfc822;" and <>; may be empty when only original is known
    std::string original_recipient;
    std::string action;              // lower case: failed, delayed, delivered, relayed, expanded
    std::string status;              // "5.1.1"; a Status of "X.0.0" gives way to the Diagnostic-Code's own X.Y.Z
    std::string diagnostic;          // Diagnostic-Code text without the "smtp;" type, unfolded, or the best text found
    std::string remote_mta;
};

struct DsnReport {
    std::string format;  // which reader understood it: "rfc3464", "postfix", "exim", "exchange", "qmail", "generic"
    std::vector<DsnRecipient> recipients;
    std::string original_envelope_id;
    // The returned message's header section when included (text/rfc822-headers
    // or message/rfc822, or the copy after a text bounce's marker line), else "".
    std::string original_message_headers;
};

// A report names at most this many recipients (the rest are not read).
inline constexpr std::size_t kMaxDsnRecipients = 1000;

// The report in a whole message (header and body, LF or CRLF): a
// message/delivery-status or message/global-delivery-status part anywhere in
// its MIME tree (not inside an enclosed message); else the text of a
// Postfix, Exim, qmail or Exchange bounce; else, in a message that says it
// is a bounce, addresses paired with enhanced status codes in its text.
// nullopt when the message is not a bounce this code can read, or names no
// recipient. Never throws.
std::optional<DsnReport> parse_dsn(std::string_view message);

}  // namespace mxlane
