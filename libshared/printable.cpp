// printable: text from outside (job names, SMTP replies, header fields) made safe for JSON, logs and terminals.
#include "libshared/printable.hpp"

namespace mxlane {
namespace {

// One step through UTF-8 text: a code point and its length, or ill-formed with
// the length of the maximal subpart to replace (at least 1).
struct Step {
    char32_t cp = 0;
    std::size_t length = 1;
    bool valid = false;
};

// Table 3-7 of the Unicode standard: the well-formed byte sequences.
Step decode(std::string_view s, std::size_t pos) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
    unsigned char b0 = byte(0);
    if (b0 < 0x80) return {b0, 1, true};
    std::size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0) lo = 0xA0;       // no overlong forms
        else if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0) lo = 0x90;       // no overlong forms
        else if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {};  // C0, C1, F5..FF, or a continuation byte with no lead
    }
    char32_t cp = b0 & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (std::size_t i = 1; i < need; ++i) {
        if (pos + i >= s.size()) return {0, i, false};
        unsigned char b = byte(i);
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {0, i, false};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {cp, need, true};
}

bool is_printable(char32_t cp) {
    if (cp < 0x20 || cp == 0x7F) return false;              // C0 controls, DEL
    if (cp >= 0x80 && cp < 0xA0) return false;              // C1 controls (CSI, OSC as one code point)
    if (cp >= 0x200E && cp <= 0x200F) return false;         // LRM, RLM
    if (cp >= 0x2028 && cp <= 0x202E) return false;         // line/paragraph separators, embeddings, overrides
    if (cp >= 0x2066 && cp <= 0x2069) return false;         // bidirectional isolates
    return true;
}

template <typename Replace>
std::string each_step(std::string_view text, Replace&& keep) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
        Step st = decode(text, pos);
        keep(out, st, text.substr(pos, st.length));
        pos += st.length;
    }
    return out;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
    return each_step(text, [](std::string& out, const Step& st, std::string_view bytes) {
        if (st.valid) out += bytes;
        else out += "\xEF\xBF\xBD";  // U+FFFD
    });
}

bool is_valid_utf8(std::string_view text) {
    for (std::size_t pos = 0; pos < text.size();) {
        Step st = decode(text, pos);
        if (!st.valid) return false;
        pos += st.length;
    }
    return true;
}

std::string printable(std::string_view text, char replacement) {
    return each_step(text, [replacement](std::string& out, const Step& st, std::string_view bytes) {
        if (st.valid && is_printable(st.cp)) out += bytes;
        else out += replacement;
    });
}

}  // namespace mxlane
