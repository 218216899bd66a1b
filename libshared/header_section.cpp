// header_section: RFC 5322 header sections: where one ends, its fields with names and unfolded values.
#include "libshared/header_section.hpp"

#include <algorithm>

#include "libshared/text.hpp"

namespace mxlane {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::size_t header_section_size(std::string_view text) {
    if (text.starts_with("\n") || text.starts_with("\r\n")) return 0;
    std::size_t lf = text.find("\n\n"), crlf = text.find("\r\n\r\n");
    if (lf == std::string_view::npos && crlf == std::string_view::npos) return std::string_view::npos;
    return std::min(lf == std::string_view::npos ? lf : lf + 1, crlf == std::string_view::npos ? crlf : crlf + 2);
}

std::vector<HeaderField> parse_header_fields(const std::vector<std::string_view>& lines, std::size_t begin,
                                             std::size_t end) {
    std::vector<HeaderField> fields;
    for (std::size_t i = begin; i < end; ++i) {
        std::string_view line = lines[i];
        if (!line.empty() && is_wsp(line.front()) && !fields.empty()) {
            fields.back().value += line;
            fields.back().end_line = i + 1;
            continue;
        }
        std::size_t colon = line.find(':');
        HeaderField f;
        f.first_line = i;
        f.end_line = i + 1;
        if (colon != std::string_view::npos) {
            f.name = trim(line.substr(0, colon), wsp_chars);
            f.value = line.substr(colon + 1);
        }
        fields.push_back(std::move(f));
    }
    for (auto& f : fields) f.value = std::string(trim(f.value, wsp_chars));
    return fields;
}

std::vector<HeaderField> parse_header_section(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t end = text.find('\n', pos);
        std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // the end of the header section
        lines.push_back(line);
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
    return parse_header_fields(lines, 0, lines.size());
}

bool same_field_name(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) { return lower(x) == lower(y); });
}

const HeaderField* find_header_field(const std::vector<HeaderField>& fields, std::string_view name) {
    for (const auto& f : fields)
        if (same_field_name(f.name, name)) return &f;
    return nullptr;
}

std::string single_line_value(std::string_view value) {
    std::string out;
    bool space = false;
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

}  // namespace mxlane
