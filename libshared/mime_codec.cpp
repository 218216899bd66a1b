// mime_codec: MIME transfer encodings (RFC 2045 quoted-printable, base64), Content-Type parameters, RFC 2047 encoded-words, charsets.
#include "libshared/mime_codec.hpp"

#include <iconv.h>

#include <cerrno>

#include "libshared/address.hpp"
#include "libshared/text.hpp"

namespace mxlane::mime {
namespace {

constexpr std::size_t kQpLine = 76;      // RFC 2045 6.7 rule 5, the soft break's "=" included
constexpr std::size_t kB64Line = 76;     // RFC 2045 6.8
constexpr std::size_t kWordPayload = 63; // 75 minus "=?UTF-8?Q?" and "?="
constexpr std::size_t kWordBytesB = 45;  // 60 base64 characters
constexpr std::size_t kFoldAt = 78;      // RFC 5322 2.1.1

const char kHex[] = "0123456789ABCDEF";
const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool blank(char c) { return c == ' ' || c == '\t'; }

void append_escape(std::string& out, unsigned char c) {
    out += '=';
    out += kHex[c >> 4];
    out += kHex[c & 15];
}

// One line (no line break in it) as quoted-printable, soft-broken at 76 characters.
void qp_line(std::string& out, std::string_view line) {
    std::size_t len = 0;  // characters on the current output line
    for (std::size_t i = 0; i < line.size(); ++i) {
        auto c = static_cast<unsigned char>(line[i]);
        bool last = i + 1 == line.size();
        bool literal = (c >= 33 && c <= 126 && c != '=') || (blank(static_cast<char>(c)) && !last);
        std::size_t n = literal ? 1 : 3;
        if (len + n > (last ? kQpLine : kQpLine - 1)) {
            out += "=\r\n";
            len = 0;
        }
        // At the start of a line: "-" (a delimiter "--boundary"), "." (SMTP's end
        // of data) and "From " (mbox) are written as escapes.
        if (len == 0 && (c == '-' || c == '.' || (c == 'F' && line.substr(i, 5) == "From "))) literal = false;
        if (literal) {
            out += static_cast<char>(c);
            len += 1;
        } else {
            append_escape(out, c);
            len += 3;
        }
    }
}

bool q_literal(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' || c == '*' ||
           c == '+' || c == '-' || c == '/';
}

// The length of the UTF-8 sequence starting with byte c (1 for a stray byte).
std::size_t utf8_length(unsigned char c) {
    if (c >= 0xF0 && c < 0xF8) return 4;
    if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
    if (c >= 0xC0) return 2;
    return 1;
}

std::string q_decode_word(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '_') out += ' ';
        else if (text[i] == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else out += text[i];
    }
    return out;
}

// The encoded-word at `at` ("=?cs?E?text?="): its decoded UTF-8 and its end; nullopt when it is not one.
std::optional<std::pair<std::string, std::size_t>> word_at(std::string_view v, std::size_t at) {
    std::size_t q1 = v.find('?', at + 2);
    if (q1 == std::string_view::npos || q1 + 2 >= v.size() || v[q1 + 2] != '?') return std::nullopt;
    std::string cs = to_lower(v.substr(at + 2, q1 - at - 2));
    if (cs.empty() || cs.find_first_of(" \t\r\n") != std::string::npos) return std::nullopt;
    if (auto star = cs.find('*'); star != std::string::npos) cs.resize(star);  // RFC 2231 language
    char enc = static_cast<char>(v[q1 + 1] | 0x20);
    std::size_t end = v.find("?=", q1 + 3);
    if ((enc != 'q' && enc != 'b') || end == std::string_view::npos) return std::nullopt;
    std::string_view text = v.substr(q1 + 3, end - q1 - 3);
    if (text.find_first_of(" \t\r\n?") != std::string_view::npos) return std::nullopt;
    std::string bytes = enc == 'q' ? q_decode_word(text) : base64_decode(text);
    if (!is_utf8_charset(cs)) {
        auto u = convert_charset(bytes, cs, "UTF-8");
        if (!u) return std::nullopt;
        bytes = std::move(*u);
    }
    return std::make_pair(std::move(bytes), end + 2);
}

}  // namespace

std::string qp_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8 + 16);
    std::size_t pos = 0;
    for (;;) {
        std::size_t end = text.find("\r\n", pos);
        qp_line(out, text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
        if (end == std::string_view::npos) return out;
        out += "\r\n";
        pos = end + 2;
    }
}

std::string qp_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t pos = 0;
    while (pos <= in.size()) {
        std::size_t nl = in.find('\n', pos);
        bool last = nl == std::string_view::npos;
        std::string_view line = in.substr(pos, last ? std::string_view::npos : nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        while (!line.empty() && blank(line.back())) line.remove_suffix(1);
        bool soft = !line.empty() && line.back() == '=';
        if (soft) line.remove_suffix(1);
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '=' && i + 2 < line.size()) {
                int hi = hex_value(line[i + 1]), lo = hex_value(line[i + 2]);
                if (hi >= 0 && lo >= 0) {
                    out += static_cast<char>(hi * 16 + lo);
                    i += 2;
                    continue;
                }
            }
            out += line[i];
        }
        if (last) break;
        if (!soft) out += "\r\n";
        pos = nl + 1;
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 4 / 3 + bytes.size() / 38 + 8);
    std::size_t len = 0;
    auto put = [&](char c) {
        if (len == kB64Line) {
            out += "\r\n";
            len = 0;
        }
        out += c;
        ++len;
    };
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
        put(kB64[v >> 18]), put(kB64[(v >> 12) & 63]), put(kB64[(v >> 6) & 63]), put(kB64[v & 63]);
    }
    if (std::size_t rest = bytes.size() - i; rest > 0) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        put(kB64[v >> 18]), put(kB64[(v >> 12) & 63]);
        put(rest == 2 ? kB64[(v >> 6) & 63] : '='), put('=');
    }
    return out;
}

std::string base64_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        int v = b64_value(c);
        if (v < 0) continue;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

namespace {

// B words' byte ranges: each a whole number of characters and, but for the last, of 3 bytes, so
// that no word but the last has "=" padding (decoders that join adjacent words' encoded text
// before decoding, GMime among them, stop at padding). nullopt when the text cannot be cut so.
std::optional<std::vector<std::string_view>> b_chunks(std::string_view s) {
    std::vector<std::size_t> ends;  // character boundaries
    for (std::size_t i = 0; i < s.size();) {
        i += std::min(utf8_length(static_cast<unsigned char>(s[i])), s.size() - i);
        ends.push_back(i);
    }
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start < s.size()) {
        if (s.size() - start <= kWordBytesB) {
            out.push_back(s.substr(start));
            break;
        }
        std::size_t cut = 0;
        for (std::size_t e : ends)
            if (e > start && e - start <= kWordBytesB && (e - start) % 3 == 0) cut = e;
        if (cut == 0) return std::nullopt;
        out.push_back(s.substr(start, cut - start));
        start = cut;
    }
    return out;
}

}  // namespace

std::vector<std::string> encode_words(std::string_view s) {
    std::size_t q_len = 0;
    for (char c : s) q_len += (q_literal(static_cast<unsigned char>(c)) || c == ' ') ? 1 : 3;
    // Q, easier to read, unless it is a third longer than B (and B can be cut without padding).
    std::vector<std::string> words;
    if (q_len * 3 > (s.size() + 2) / 3 * 4 * 4) {
        if (auto chunks = b_chunks(s)) {
            for (auto c : *chunks) words.push_back("=?UTF-8?B?" + base64_encode(c) + "?=");
            return words;
        }
    }
    std::string payload;
    for (std::size_t i = 0; i < s.size();) {
        std::size_t n = std::min(utf8_length(static_cast<unsigned char>(s[i])), s.size() - i);
        std::string enc;
        for (char c : s.substr(i, n)) {
            auto u = static_cast<unsigned char>(c);
            if (c == ' ') enc += '_';
            else if (q_literal(u)) enc += c;
            else append_escape(enc, u);
        }
        if (payload.size() + enc.size() > kWordPayload) {
            words.push_back("=?UTF-8?Q?" + payload + "?=");
            payload.clear();
        }
        payload += enc;
        i += n;
    }
    if (!payload.empty()) words.push_back("=?UTF-8?Q?" + payload + "?=");
    return words;
}

std::string decode_words(std::string_view v) {
    std::string out;
    std::size_t i = 0, pending_ws = std::string_view::npos;  // start of blanks after an encoded-word
    bool after_word = false;
    while (i < v.size()) {
        if (v.substr(i, 2) == "=?") {
            if (auto w = word_at(v, i)) {
                if (after_word && pending_ws != std::string_view::npos) out.resize(pending_ws);
                out += w->first;
                i = w->second;
                after_word = true;
                pending_ws = out.size();
                continue;
            }
        }
        if (!blank(v[i]) && v[i] != '\r' && v[i] != '\n') after_word = false;
        out += v[i++];
    }
    return out;
}

std::string media_type(std::string_view value) { return to_lower(trim(value.substr(0, value.find(';')), blank_chars)); }

std::string content_type_param(std::string_view value, std::string_view name) {
    std::size_t i = value.find(';');
    while (i != std::string_view::npos && i < value.size()) {
        ++i;
        std::size_t eq = value.find_first_of("=;", i);
        if (eq == std::string_view::npos) break;
        if (value[eq] == ';') {
            i = eq;
            continue;
        }
        bool match = to_lower(trim(value.substr(i, eq - i), blank_chars)) == name;
        i = eq + 1;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        std::string param;
        if (i < value.size() && value[i] == '"') {
            for (++i; i < value.size() && value[i] != '"'; ++i) {
                if (value[i] == '\\' && i + 1 < value.size()) ++i;
                param += value[i];
            }
            i = value.find(';', i);
        } else {
            std::size_t stop = value.find(';', i);
            param = std::string(trim(value.substr(i, stop == std::string_view::npos ? stop : stop - i), blank_chars));
            i = stop;
        }
        if (match) return param;
    }
    return "";
}

bool has_encoded_word_marker(std::string_view value) { return value.find("=?") != std::string_view::npos; }

std::optional<std::string> convert_charset(std::string_view text, const std::string& from, const std::string& to) {
    iconv_t cd = iconv_open(to.c_str(), from.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
    std::string out(text.size() * 2 + 16, '\0');
    char* in = const_cast<char*>(text.data());
    std::size_t in_left = text.size(), done = 0;
    bool ok = true;
    while (in_left > 0) {
        char* o = out.data() + done;
        std::size_t o_left = out.size() - done;
        std::size_t r = iconv(cd, &in, &in_left, &o, &o_left);
        done = out.size() - o_left;
        if (r == static_cast<std::size_t>(-1)) {
            if (errno == E2BIG) {
                out.resize(out.size() * 2);
                continue;
            }
            ok = false;
            break;
        }
        if (r > 0) {  // irreversible conversions: some character had no exact form
            ok = false;
            break;
        }
    }
    iconv_close(cd);
    if (!ok) return std::nullopt;
    out.resize(done);
    return out;
}

bool is_utf8_charset(std::string_view charset) {
    std::string c = to_lower(charset);
    return c == "utf-8" || c == "utf8" || is_ascii_charset(c);
}

bool is_ascii_charset(std::string_view charset) {
    std::string c = to_lower(charset);
    return c == "us-ascii" || c == "ascii";
}

bool has_non_ascii(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
}

std::string fold_field(std::string_view name, const std::vector<std::string>& tokens) {
    std::string out(name);
    out += ':';
    std::size_t len = out.size();
    bool first = true;
    for (const auto& t : tokens) {
        if (!first && len + 1 + t.size() > kFoldAt) {
            out += "\r\n";
            len = 0;
        }
        out += ' ';
        out += t;
        len += 1 + t.size();
        first = false;
    }
    out += "\r\n";
    return out;
}

}  // namespace mxlane::mime
