// render_plan: a message template parsed once (MIME parts, charsets, transfer encodings) and rendered per recipient.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/mime_fields.hpp"
#include "libshared/template.hpp"

namespace mxlane::mime {

// What a message text becomes when it is parsed for personalisation: the
// header fields and text parts that hold placeholders once decoded
// (quoted-printable, base64, RFC 2047 encoded-words; a placeholder that a
// soft line break split is found too) kept decoded; everything else kept as
// byte ranges of the text, copied as they are.
//
// Per recipient only the templated pieces are rendered: a header field in its
// grammar (see FieldTemplate), a text part in its own transfer encoding
// (quoted-printable in lines of at most 76 characters, base64 in lines of 76)
// and charset: a value is converted to the part's charset when it has a form
// there, else the part is re-labelled charset=utf-8. A 7bit, 8bit or
// unlabelled part whose rendered text would not be valid in it (non-ASCII in
// 7bit, a line over 998 bytes, a line that starts like one of its enclosing
// boundaries) is sent as quoted-printable instead; a message without MIME
// headers gets them then. Placeholders elsewhere (a part's header fields, a
// non-text part's text) are rendered as written, line breaks in values made
// spaces. Values are never scanned for placeholders.
class RenderPlan {
public:
    explicit RenderPlan(std::string text);
    ~RenderPlan();
    RenderPlan(RenderPlan&&) noexcept;
    RenderPlan& operator=(RenderPlan&&) noexcept;

    // Does any field or part hold a placeholder?
    bool personalised() const;

    // The decoded texts that hold placeholders, one after another: what
    // placeholders() and has_placeholders() are asked about.
    std::string template_text() const;

    // The message for one recipient, in stored form (line ends LF or CRLF,
    // not dot-stuffed: smtp::to_wire makes it wire text). utf8: the message is
    // sent with SMTPUTF8, header fields may carry raw UTF-8 (RFC 6532).
    std::string render(const PlaceholderValue& value, bool utf8) const;

    struct Part;
    struct Piece;

private:
    std::string text_;
    std::vector<Piece> pieces_;
    std::vector<FieldTemplate> fields_;
    std::vector<Part> parts_;
    friend class PlanBuilder;
};

// The message for one recipient: {{address}} is the address, {{name}} the
// field `name` (names[i] -> values[i]); other placeholders stay as they are.
std::string render_message(const RenderPlan& plan, const std::vector<std::string>& names,
                           const std::vector<std::string>& values, std::string_view address, bool utf8);

// The text with every placeholder named `from` renamed to `to`, in decoded
// parts and fields too (they are re-encoded); the text as it is when none is.
std::string rename_placeholder_mime(const std::string& text, std::string_view from, std::string_view to);

}  // namespace mxlane::mime
