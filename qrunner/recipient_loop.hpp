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

}  // namespace mxlane::qrunner
