// mime_parts: the leaf parts of a received message, found by walking its multiparts to a bounded depth, bodies decoded.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/header_section.hpp"

namespace mxlane::mime {

// One leaf of a message's MIME tree (RFC 2045, 2046): a part that is not a
// multipart. A message/rfc822 part is a leaf too: what it encloses is another
// message (in a report, the one being reported on), never the report's own parts.
struct LeafPart {
    std::string media_type;    // lower case; "text/plain" when the part names none (RFC 2045 5.2)
    std::string content_type;  // the Content-Type value as written (parameters: content_type_param)
    std::string parent_type;   // the enclosing multipart's Content-Type value; "" for a message that is one leaf
    std::string body;          // Content-Transfer-Encoding base64 and quoted-printable undone; line ends as received
    std::size_t index = 0;     // its place among the enclosing multipart's parts, from 0
};

// What walking a message finds.
struct MessageParts {
    std::vector<HeaderField> header;  // the message's own header fields
    std::vector<LeafPart> leaves;     // in the order they appear
};

// Multiparts nested deeper than this are not opened (a fuzzer, or a loop of
// forwarded reports, cannot make the walk recurse without bound).
inline constexpr int kMaxPartDepth = 8;
// More leaves than this are not collected.
inline constexpr std::size_t kMaxLeafParts = 256;

// The message's leaves. A multipart without a closing delimiter ends with the
// message; one whose boundary never appears has no parts. Any input is read;
// nothing throws but std::bad_alloc. Linear in the size of the message times the depth.
MessageParts walk_parts(std::string_view message);

// The lines of `text` (CRLF or LF ended), without their line ends.
std::vector<std::string_view> split_lines(std::string_view text);

// What a body line is to a multipart whose delimiter is `dash` ("--" + boundary),
// RFC 2046 5.1.1: a delimiter (blanks may follow), the close delimiter, or neither.
enum class Delimiter { none, part, close };
Delimiter delimiter_kind(std::string_view line, std::string_view dash);

// The header section at the start of `text` (without the blank line that
// ends it); all of `text` when no blank line follows.
std::string_view header_section_of(std::string_view text);

}  // namespace mxlane::mime
