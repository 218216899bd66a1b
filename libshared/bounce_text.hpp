// bounce_text: the non-standard bounces read from their text: Postfix, Exim, qmail, Exchange, and codes paired with addresses.
#pragma once
#include <optional>
#include <string>

#include "libshared/dsn_report.hpp"
#include "libshared/mime_parts.hpp"

namespace mxlane::report {

// The report a bounce's human-readable text gives, by the first reader that
// knows its wording; format names the reader. Recipients are "failed", or
// "delayed" when the text is a delay warning; the status is the enhanced code
// in the recipient's text, else its reply code's class (550 -> "5.0.0"), else
// "5.0.0" ("4.0.0" for a delay). nullopt when no reader finds a recipient.
std::optional<DsnReport> read_text_bounce(const mime::MessageParts& parts);

}  // namespace mxlane::report
