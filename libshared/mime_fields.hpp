// mime_fields: header fields with placeholders, rendered per recipient in their own grammar (RFC 5322, 2047, 6532).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/header_section.hpp"
#include "libshared/template.hpp"

namespace mxlane::mime {

// One header field of a template, decoded once when the message is loaded.
//   - Subject, Comments and X-* fields are unstructured: the whole value (its
//     encoded-words decoded) is rendered and, when it holds non-ASCII (or
//     "=?"), written as encoded-words;
//   - From, Sender, Reply-To, To, Cc and Bcc are mailbox lists: a display name
//     is rendered and written as an atom, a quoted string or encoded-words; an
//     address stays an address (blanks, line breaks, "<", ">" and "," dropped);
//   - any other field (List-Unsubscribe, Message-ID, ...) is rendered in its
//     text as written, line breaks in values turned into spaces.
// A field's name is never rendered: a placeholder there stays as written.
// With utf8 (the message goes with SMTPUTF8, RFC 6532) non-ASCII stays raw UTF-8.
class FieldTemplate {
public:
    // nullopt when the field holds no placeholder (it is copied as it is).
    // `raw` is the field's text as stored, line ends included.
    static std::optional<FieldTemplate> make(const HeaderField& field, std::string_view raw);

    // The field for one recipient, folded, CRLF ended.
    std::string render(const PlaceholderValue& value, bool utf8) const;

    // The text the placeholders are read from (decoded), for listing their names.
    std::string template_text() const;

private:
    enum class Kind { unstructured, mailboxes, raw };
    struct Mailbox {
        std::string display;  // decoded (unquoted, encoded-words decoded)
        std::string address;
        bool angle = false;   // written as <address>
    };
    Kind kind_ = Kind::raw;
    std::string name_;   // raw: the name as stored, its colon included (never rendered)
    std::string value_;  // unstructured: decoded value; raw: the rest of the field as stored
    std::vector<Mailbox> boxes_;
};

}  // namespace mxlane::mime
