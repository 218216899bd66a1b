// template: {{column}} personalisation of a message text for one recipient.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// A placeholder is "{{" NAME "}}", with optional blanks around NAME; NAME is
// letters, digits, '_', '-' and '.', compared exactly (case matters). Anything
// else between braces ("{{ }}", "{{a b}}", a lone "{{") is plain text.
//
// The name "address" always gives the recipient's address, whatever the first
// column of the recipients file is called (mxlanectl submit rewrites a
// placeholder naming the first column to {{address}} before it stores the text).

// Does the text hold at least one placeholder? (no: the message is not personalised)
bool has_placeholders(std::string_view text);

// The distinct placeholder names in order of first appearance.
std::vector<std::string> placeholders(std::string_view text);

// Where the first placeholder of that name starts (npos: none), to point at its line.
std::size_t placeholder_offset(std::string_view text, std::string_view name);

// The text for one recipient: each placeholder becomes the value of the field
// of that name (names[i] -> values[i]) or the address for "address"; a name
// with no field stays as it is. Values are inserted once and never scanned
// again, so a value holding "{{x}}" arrives literally. In the header section
// (up to the first empty line) CR and LF in a value become spaces, so that a
// field can never add a header line.
std::string render_template(std::string_view text, const std::vector<std::string>& names,
                            const std::vector<std::string>& values, std::string_view address);

// The value for a placeholder name; nullopt leaves the placeholder as it is.
using PlaceholderValue = std::function<std::optional<std::string_view>(std::string_view name)>;

// How line breaks inside a value are written.
enum class ValueBreaks {
    space,  // each CR and LF a space (a header field value: it can never add a line)
    crlf,   // CRLF, LF and a bare CR each CRLF (a text body in canonical form)
};

// Appends `text` to `out` with each placeholder that `value` knows replaced by
// its value (never scanned again), line breaks in values written as `breaks` says.
void substitute(std::string& out, std::string_view text, const PlaceholderValue& value, ValueBreaks breaks);

// The text with every placeholder named `from` renamed to `to`; the rest unchanged.
std::string rename_placeholder(std::string_view text, std::string_view from, std::string_view to);

}  // namespace mxlane
