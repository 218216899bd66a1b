// report_text: reading the free text of reports: addresses, SMTP and enhanced status codes, typed field values.
#include "libshared/report_text.hpp"

#include <cstdint>

#include "libshared/header_section.hpp"
#include "libshared/text.hpp"

namespace mxlane::report {

namespace {

constexpr std::size_t npos = std::string_view::npos;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 5322 atext, the dot, and any UTF-8 byte (RFC 6531 addresses).
bool is_local_char(char c) {
    return is_alnum(c) || static_cast<unsigned char>(c) >= 0x80 ||
           std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}
bool is_domain_char(char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

// Digits from `i`: how many (at most `max` + 1 are counted).
std::size_t digits_at(std::string_view t, std::size_t i, std::size_t max) {
    std::size_t n = 0;
    while (i + n < t.size() && is_digit(t[i + n]) && n <= max) ++n;
    return n;
}

}  // namespace

bool contains_nocase(std::string_view text, std::string_view phrase) {
    if (phrase.empty()) return true;
    if (phrase.size() > text.size()) return false;
    // The phrases are short and fixed: a first-character scan keeps this linear in practice.
    char first = lower(phrase[0]);
    for (std::size_t i = 0; i + phrase.size() <= text.size(); ++i) {
        if (lower(text[i]) != first) continue;
        std::size_t k = 1;
        while (k < phrase.size() && lower(text[i + k]) == lower(phrase[k])) ++k;
        if (k == phrase.size()) return true;
    }
    return false;
}

std::string find_address(std::string_view text) {
    for (std::size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
        std::size_t b = at;
        while (b > 0 && is_local_char(text[b - 1])) --b;
        std::size_t e = at + 1;
        while (e < text.size() && is_domain_char(text[e])) ++e;
        std::string_view local = text.substr(b, at - b), domain = text.substr(at + 1, e - at - 1);
        while (!local.empty() && local.front() == '.') local.remove_prefix(1);
        while (!domain.empty() && (domain.back() == '.' || domain.back() == '-')) domain.remove_suffix(1);
        if (local.empty() || domain.empty() || domain.front() == '.' || domain.front() == '-') continue;
        return std::string(local) + "@" + std::string(domain);
    }
    return "";
}

std::string find_enhanced_code(std::string_view t) {
    for (std::size_t i = 0; i + 5 <= t.size(); ++i) {
        char c = t[i];
        if ((c != '2' && c != '4' && c != '5') || t[i + 1] != '.') continue;
        if (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '.')) continue;
        std::size_t a = digits_at(t, i + 2, 3);
        if (a == 0 || a > 3 || i + 2 + a >= t.size() || t[i + 2 + a] != '.') continue;
        std::size_t b = digits_at(t, i + 3 + a, 3);
        if (b == 0 || b > 3) continue;
        std::size_t e = i + 3 + a + b;
        if (e < t.size() && (is_alnum(t[e]) || (t[e] == '.' && e + 1 < t.size() && is_digit(t[e + 1])))) continue;
        return std::string(t.substr(i, e - i));
    }
    return "";
}

int find_reply_code(std::string_view t) {
    for (std::size_t i = 0; i + 3 <= t.size(); ++i) {
        if (t[i] != '4' && t[i] != '5') continue;
        if (i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == '.' || t[i - 1] == ':' || t[i - 1] == '-')) continue;
        if (!is_digit(t[i + 1]) || !is_digit(t[i + 2])) continue;
        std::size_t e = i + 3;
        if (e < t.size() && t[e] != ' ' && t[e] != '-' && t[e] != '\t' && t[e] != '\'' && t[e] != ')') continue;
        return (t[i] - '0') * 100 + (t[i + 1] - '0') * 10 + (t[i + 2] - '0');
    }
    return 0;
}

std::string status_in_text(std::string_view text, std::string_view fallback) {
    std::string code = find_enhanced_code(text);
    if (!code.empty()) return code;
    int reply = find_reply_code(text);
    if (reply >= 500) return "5.0.0";
    if (reply >= 400) return "4.0.0";
    return std::string(fallback);
}

std::string without_comments(std::string_view value) {
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\\' && i + 1 < value.size()) {
            if (depth == 0) out += value.substr(i, 2);
            ++i;
        } else if (quoted) {
            out += c;
            if (c == '"') quoted = false;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')' && depth > 0) {
            --depth;
        } else if (depth == 0) {
            if (c == '"') quoted = true;
            out += c;
        }
    }
    return single_line_value(out);
}

std::string_view after_type(std::string_view value) {
    value = trim(value);
    std::size_t semi = value.find(';');
    if (semi == std::string_view::npos) return value;
    // A type is one token ("rfc822", "smtp", "X-Postfix"): a ";" after words is the text's own.
    std::string_view type = trim(value.substr(0, semi));
    if (type.empty() || type.find_first_of(" \t<>@\"") != std::string_view::npos) return value;
    return trim(value.substr(semi + 1));
}

std::string typed_address(std::string_view value) {
    std::string plain = without_comments(value);
    std::string_view a = after_type(plain);
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = trim(a.substr(1, a.size() - 2));
    if (a.size() >= 2 && a.front() == '<') a = trim(a.substr(1));
    std::string_view type = trim(std::string_view(plain).substr(0, plain.find(';')));
    return same_field_name(type, "utf-8") ? unescape_unicode(a) : std::string(a);
}

std::string unescape_unicode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        std::size_t close = text.substr(i, 11).find('}');
        std::uint32_t cp = 0;
        bool ok = text.substr(i).starts_with("\\x{") && close != npos && close > 3 && close <= 9;
        for (std::size_t k = i + 3; ok && k < i + close; ++k) {
            char c = lower(text[k]);
            ok = is_digit(c) || (c >= 'a' && c <= 'f');
            cp = cp * 16 + static_cast<std::uint32_t>(is_digit(c) ? c - '0' : c - 'a' + 10);
        }
        if (!ok || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            out += text[i];
            continue;
        }
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        i += close;
    }
    return out;
}

}  // namespace mxlane::report
