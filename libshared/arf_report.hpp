// arf_report: feedback-loop complaints read: RFC 5965 reports and the common non-conforming shapes.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace mxlane {

struct ArfReport {
    std::string feedback_type;       // lower case: abuse, fraud, virus, other, not-spam, ...
    std::string user_agent, version;
    std::string original_rcpt_to;    // Original-Rcpt-To (may be missing or redacted)
    std::string original_mail_from;
    std::string reported_domain, source_ip, arrival_date;
    std::string original_headers;    // the reported message's header section (message/rfc822 or text/rfc822-headers)
};

// The complaint in a whole message (header and body, LF or CRLF):
// multipart/report; report-type=feedback-report (RFC 5965 2) with its
// message/feedback-report part, or a text/plain part holding the same fields
// (as some feedback loops send). nullopt for anything without a Feedback-Type. Never throws.
std::optional<ArfReport> parse_arf(std::string_view message);

}  // namespace mxlane
