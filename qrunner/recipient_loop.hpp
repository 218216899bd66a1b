// recipient_loop: what each recipient's copy carries back to mxlane: the VERP sender and the List-Unsubscribe fields.
#pragma once
#include <string>

#include "libshared/store/records.hpp"
#include "qrunner/settings.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

// Does message m go out one recipient per transaction, each copy with the
// recipient's own token (bounce_address, unsubscribe_address or
// unsubscribe_url set)? Never for mxlane's own notifications.
bool needs_recipient_token(const Settings& s, const store::Message& m);

// The envelope sender for r's copy of m: bounce_address with r's token after
// recipient_delimiter (LOCAL+TOKEN@DOMAIN), or the stored sender when VERP is
// off, for a notification, and for a null sender (<> asks for no bounces).
// Throws LoopKeyError when the loop key cannot be read.
std::string envelope_sender(const Settings& s, const MessageData& m, const store::Recipient& r);

// Does r's copy of m get List-Unsubscribe fields (unsubscribe_address or
// unsubscribe_url set; never for a notification)?
bool needs_unsubscribe_fields(const Settings& s, const store::Message& m);

// r's copy of `text` (a stored or rendered message) with its own
// "List-Unsubscribe: <mailto:LOCAL+TOKEN@DOMAIN>, <URLTOKEN>" (RFC 2369) and,
// with unsubscribe_url, "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
// (RFC 8058) at the end of its header section, in place of any such fields
// the message brought (one-click needs exactly one of each). Throws
// LoopKeyError when the loop key cannot be read.
std::string with_unsubscribe_fields(const Settings& s, const MessageData& m, const store::Recipient& r,
                                    std::string text);

}  // namespace mxlane::qrunner
