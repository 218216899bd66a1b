// recipient_loop: what each recipient's copy carries back to mxlane: the VERP sender and the List-Unsubscribe fields.
#include "qrunner/recipient_loop.hpp"

#include "libshared/header_section.hpp"
#include "libshared/recipient_token.hpp"
#include "libshared/text.hpp"
#include "qrunner/notify.hpp"

namespace mxlane::qrunner {

bool needs_recipient_token(const Settings& s, const store::Message& m) {
    if (is_notification(m)) return false;
    return !s.bounce_address.empty() || !s.unsubscribe_address.empty() || !s.unsubscribe_url.empty();
}

bool needs_unsubscribe_fields(const Settings& s, const store::Message& m) {
    return (!s.unsubscribe_address.empty() || !s.unsubscribe_url.empty()) && !is_notification(m);
}

std::string with_unsubscribe_fields(const Settings& s, const MessageData& m, const store::Recipient& r,
                                    std::string text) {
    const std::string token = recipient_token_make(s.queue_directory, {m.meta.job_id, r.seq});
    std::size_t size = header_section_size(text);
    if (size == std::string::npos) size = text.size();
    // The header's own line end (to_wire makes CRLF of either later).
    const std::string eol = text.find("\r\n") < size ? "\r\n" : "\n";
    std::string value;
    if (!s.unsubscribe_address.empty())
        value = "<mailto:" + tagged_address(s.unsubscribe_address, s.recipient_delimiter, token) + ">";
    if (!s.unsubscribe_url.empty()) value += (value.empty() ? "<" : "," + eol + " <") + s.unsubscribe_url + token + ">";
    std::string head;
    bool dropping = false;
    for (std::size_t at = 0; at < size;) {
        std::size_t end = text.find('\n', at);
        end = end == std::string::npos || end >= size ? size : end + 1;
        std::string_view line(text.data() + at, end - at);
        if (line.front() != ' ' && line.front() != '\t') {  // a field starts (else it continues)
            const std::string_view name = trim(line.substr(0, line.find(':')));
            dropping = same_field_name(name, "List-Unsubscribe") || same_field_name(name, "List-Unsubscribe-Post");
        }
        if (!dropping) head += line;
        at = end;
    }
    if (!head.empty() && head.back() != '\n') head += eol;
    head += "List-Unsubscribe: " + value + eol;
    if (!s.unsubscribe_url.empty()) head += "List-Unsubscribe-Post: List-Unsubscribe=One-Click" + eol;
    if (size == text.size()) head += eol;  // no empty line closed the header: now one does
    return head + text.substr(size);
}

std::string envelope_sender(const Settings& s, const MessageData& m, const store::Recipient& r) {
    if (s.bounce_address.empty() || m.meta.sender.empty() || is_notification(m.meta)) return m.meta.sender;
    const std::string token = recipient_token_make(s.queue_directory, {m.meta.job_id, r.seq});
    return tagged_address(s.bounce_address, s.recipient_delimiter, token);
}

}  // namespace mxlane::qrunner
