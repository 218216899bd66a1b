// canon: DKIM relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) and the choice of signed header fields (5.4).
#include "qrunner/dkim/canon.hpp"

#include "libshared/header_section.hpp"

namespace mxlane::dkim {
namespace {

bool wsp(char c) { return c == ' ' || c == '\t'; }

}  // namespace

MessageParts split_wire(std::string_view wire) {
    MessageParts out;
    bool in_header = true;
    while (!wire.empty()) {
        std::size_t end = wire.find("\r\n");
        std::string_view line = wire.substr(0, end);
        wire.remove_prefix(end == std::string_view::npos ? wire.size() : end + 2);
        if (!line.empty() && line[0] == '.') line.remove_prefix(1);
        if (!in_header) {
            out.body.append(line);
            if (end != std::string_view::npos) out.body += "\r\n";
            continue;
        }
        if (line.empty()) {
            in_header = false;
            continue;
        }
        if (wsp(line[0]) && !out.fields.empty()) out.fields.back().append("\r\n").append(line);
        else out.fields.emplace_back(line);
    }
    return out;
}

std::string_view field_name(std::string_view field) {
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return {};
    std::string_view name = field.substr(0, colon);
    while (!name.empty() && wsp(name.back())) name.remove_suffix(1);
    return name;
}

std::string relaxed_header(std::string_view field) {
    std::size_t colon = field.find(':');
    std::string out;
    out.reserve(field.size() + 2);
    for (char c : field_name(field)) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    out += ':';
    std::string_view value = colon == std::string_view::npos ? std::string_view() : field.substr(colon + 1);
    bool space = false;  // a run of WSP (or a line break) is pending
    bool started = false;
    for (char c : value) {
        if (c == '\r' || c == '\n' || wsp(c)) {
            space = true;
            continue;
        }
        if (space && started) out += ' ';
        space = false;
        started = true;
        out += c;
    }
    // The value's ends lose what C's isspace() calls space too (VT, FF), not
    // only WSP: so do OpenDKIM and dkimpy, and a receiver must agree with us.
    const std::size_t value_start = out.find(':') + 1;
    std::size_t lead = value_start;
    while (lead < out.size() && (out[lead] == '\v' || out[lead] == '\f' || out[lead] == ' ')) ++lead;
    out.erase(value_start, lead - value_start);
    while (out.size() > value_start && (out.back() == '\v' || out.back() == '\f' || out.back() == ' ')) out.pop_back();
    out += "\r\n";
    return out;
}

std::string relaxed_body(std::string_view body) {
    std::string out, line;
    out.reserve(body.size());
    std::size_t empty = 0;  // empty lines seen since the last line with text: kept only if text follows
    while (!body.empty()) {
        std::size_t end = body.find("\r\n");
        std::string_view raw = body.substr(0, end);
        body.remove_prefix(end == std::string_view::npos ? body.size() : end + 2);
        line.clear();
        bool space = false;
        for (char c : raw) {
            if (wsp(c)) {
                space = true;
                continue;
            }
            if (space) line += ' ';
            space = false;
            line += c;
        }
        if (line.empty()) {
            ++empty;
            continue;
        }
        for (; empty > 0; --empty) out += "\r\n";
        out += line;
        out += "\r\n";
    }
    return out;
}

std::vector<std::string> header_list(const std::vector<std::string>& fields, const std::vector<std::string>& names,
                                     const std::vector<std::string>& oversign) {
    auto listed = [](const std::vector<std::string>& list, std::string_view name) {
        for (const auto& n : list)
            if (same_field_name(n, name)) return true;
        return false;
    };
    std::vector<std::string> h;
    for (const auto& f : fields) {
        std::string_view name = field_name(f);
        if (!name.empty() && listed(names, name)) h.emplace_back(name);
    }
    for (const auto& name : oversign) h.push_back(name);
    return h;
}

std::string signed_header_data(const std::vector<std::string>& fields, const std::vector<std::string>& h) {
    std::vector<bool> taken(fields.size(), false);
    std::string out;
    for (const auto& name : h) {
        for (std::size_t i = fields.size(); i-- > 0;) {
            if (taken[i] || !same_field_name(field_name(fields[i]), name)) continue;
            taken[i] = true;
            out += relaxed_header(fields[i]);
            break;
        }
    }
    return out;
}

}  // namespace mxlane::dkim
