// template: {{column}} personalisation of a message text for one recipient.
#include "libshared/template.hpp"

#include <algorithm>
#include <optional>

#include "libshared/header_section.hpp"

namespace mxlane {
namespace {

struct Placeholder {
    std::size_t begin = 0, end = 0;  // text[begin, end) is "{{ name }}"
    std::string_view name;
};

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

bool blank(char c) { return c == ' ' || c == '\t'; }

// The placeholder starting exactly at `at` ("{{"), if it is one.
std::optional<Placeholder> placeholder_at(std::string_view text, std::size_t at) {
    std::size_t i = at + 2;
    while (i < text.size() && blank(text[i])) ++i;
    std::size_t name_begin = i;
    while (i < text.size() && name_char(text[i])) ++i;
    std::size_t name_end = i;
    while (i < text.size() && blank(text[i])) ++i;
    if (name_end == name_begin || text.substr(i, 2) != "}}") return std::nullopt;
    return Placeholder{at, i + 2, text.substr(name_begin, name_end - name_begin)};
}

// The next placeholder at or after `from`.
std::optional<Placeholder> next_placeholder(std::string_view text, std::size_t from) {
    for (std::size_t at = text.find("{{", from); at != std::string_view::npos; at = text.find("{{", at + 1))
        if (auto p = placeholder_at(text, at)) return p;
    return std::nullopt;
}

void append_value(std::string& out, std::string_view value, bool in_header) {
    if (!in_header) {
        out += value;
        return;
    }
    for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
}

}  // namespace

bool has_placeholders(std::string_view text) { return next_placeholder(text, 0).has_value(); }

std::vector<std::string> placeholders(std::string_view text) {
    std::vector<std::string> names;
    for (auto p = next_placeholder(text, 0); p; p = next_placeholder(text, p->end))
        if (std::find(names.begin(), names.end(), p->name) == names.end()) names.emplace_back(p->name);
    return names;
}

std::size_t placeholder_offset(std::string_view text, std::string_view name) {
    for (auto p = next_placeholder(text, 0); p; p = next_placeholder(text, p->end))
        if (p->name == name) return p->begin;
    return std::string_view::npos;
}

std::string render_template(std::string_view text, const std::vector<std::string>& names,
                            const std::vector<std::string>& values, std::string_view address) {
    std::string out;
    out.reserve(text.size() + 64);
    std::size_t headers = header_section_size(text), done = 0;
    for (auto p = next_placeholder(text, 0); p; p = next_placeholder(text, p->end)) {
        std::optional<std::string_view> value;
        if (p->name == "address") value = address;
        else if (auto it = std::find(names.begin(), names.end(), p->name); it != names.end()) {
            auto i = static_cast<std::size_t>(it - names.begin());
            value = i < values.size() ? std::string_view(values[i]) : std::string_view();
        }
        if (!value) continue;  // left as it is: copied with the text around it
        out += text.substr(done, p->begin - done);
        append_value(out, *value, p->begin < headers);
        done = p->end;
    }
    out += text.substr(done);
    return out;
}

void substitute(std::string& out, std::string_view text, const PlaceholderValue& value, ValueBreaks breaks) {
    std::size_t done = 0;
    for (auto p = next_placeholder(text, 0); p; p = next_placeholder(text, p->end)) {
        auto v = value(p->name);
        if (!v) continue;
        out += text.substr(done, p->begin - done);
        if (breaks == ValueBreaks::space) {
            append_value(out, *v, true);
        } else {
            for (std::size_t i = 0; i < v->size(); ++i) {
                char c = (*v)[i];
                if (c == '\r' || c == '\n') {
                    if (c == '\r' && i + 1 < v->size() && (*v)[i + 1] == '\n') ++i;
                    out += "\r\n";
                } else {
                    out += c;
                }
            }
        }
        done = p->end;
    }
    out += text.substr(done);
}

std::string rename_placeholder(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    std::size_t done = 0;
    for (auto p = next_placeholder(text, 0); p; p = next_placeholder(text, p->end)) {
        if (p->name != from) continue;
        out += text.substr(done, p->begin - done);
        out += "{{";
        out += to;
        out += "}}";
        done = p->end;
    }
    out += text.substr(done);
    return out;
}

}  // namespace mxlane
