// recipient_loop: what each recipient's copy carries back to mxlane: the VERP sender and the List-Unsubscribe fields.
#include "qrunner/recipient_loop.hpp"

#include "libshared/recipient_token.hpp"
#include "qrunner/notify.hpp"

namespace mxlane::qrunner {

bool needs_recipient_token(const Settings& s, const store::Message& m) {
    if (is_notification(m)) return false;
    return !s.bounce_address.empty() || !s.unsubscribe_address.empty() || !s.unsubscribe_url.empty();
}

std::string envelope_sender(const Settings& s, const MessageData& m, const store::Recipient& r) {
    if (s.bounce_address.empty() || m.meta.sender.empty() || is_notification(m.meta)) return m.meta.sender;
    const std::string token = recipient_token_make(s.queue_directory, {m.meta.job_id, r.seq});
    return tagged_address(s.bounce_address, s.recipient_delimiter, token);
}

}  // namespace mxlane::qrunner
