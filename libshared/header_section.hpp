// header_section: RFC 5322 header sections: where one ends, its fields with names and unfolded values.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// The length of the header section at the start of `text`, through the line
// end of its last field, without the empty line that closes it (RFC 5322
// 2.1). Lines end in CRLF or LF. 0 when `text` starts with the empty line;
// npos when no empty line follows (all of it is header, or it was cut short).
std::size_t header_section_size(std::string_view text);

// One header field (RFC 5322 2.2).
struct HeaderField {
    std::string name;   // as written, without WSP around it; "" for a line without a colon
    std::string value;  // unfolded (3.2.2: the line breaks removed, the WSP kept), no WSP at either end
    std::size_t first_line = 0, end_line = 0;  // read from lines [first_line, end_line)
};

// The fields in lines [begin, end), each given without its line end. A line
// that starts with WSP continues the field before it (folding, 2.2.3).
std::vector<HeaderField> parse_header_fields(const std::vector<std::string_view>& lines, std::size_t begin,
                                             std::size_t end);

// The fields of the header section at the start of `text`: its lines up to
// the first empty one, CRLF or LF ended; line numbers count from 0.
std::vector<HeaderField> parse_header_section(std::string_view text);

// Field names compare without regard to case (RFC 5322 1.2.2).
bool same_field_name(std::string_view a, std::string_view b);

// The first field called `name`; nullptr when there is none.
const HeaderField* find_header_field(const std::vector<HeaderField>& fields, std::string_view name);

// A value on one line: each run of blanks, tabs and line ends (folding
// included) one space, none at either end.
std::string single_line_value(std::string_view value);

}  // namespace mxlane
