// mime_fields: header fields with placeholders, rendered per recipient in their own grammar (RFC 5322, 2047, 6532).
#include "libshared/mime_fields.hpp"

#include "libshared/address.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/text.hpp"

namespace mxlane::mime {
namespace {

bool is_unstructured(std::string_view name) {
    return same_field_name(name, "subject") || same_field_name(name, "comments") ||
           (name.size() > 2 && (name[0] == 'x' || name[0] == 'X') && name[1] == '-');
}

bool is_mailbox_list(std::string_view name) {
    for (std::string_view n : {"from", "sender", "reply-to", "to", "cc", "bcc"})
        if (same_field_name(name, n)) return true;
    return false;
}

// The mailboxes of a list split at commas outside quotes, angle brackets and
// comments; nullopt for what is not a plain list (a group, an unclosed quote).
std::optional<std::vector<std::string_view>> split_list(std::string_view v) {
    std::vector<std::string_view> out;
    bool quoted = false;
    int angle = 0, comment = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (quoted) {
            if (c == '\\') ++i;
            else if (c == '"') quoted = false;
            continue;
        }
        if (c == '\\' && comment) ++i;
        else if (c == '"' && !comment) quoted = true;
        else if (c == '(') ++comment;
        else if (c == ')' && comment) --comment;
        else if (comment) continue;
        else if (c == '<') ++angle;
        else if (c == '>' && angle) --angle;
        else if ((c == ':' || c == ';') && !angle) return std::nullopt;
        else if (c == ',' && !angle) {
            out.push_back(v.substr(start, i - start));
            start = i + 1;
        }
    }
    if (quoted || angle || comment) return std::nullopt;
    out.push_back(v.substr(start));
    return out;
}

std::string unquote(std::string_view q) {
    std::string out;
    for (std::size_t i = 1; i + 1 < q.size(); ++i) {
        if (q[i] == '\\' && i + 2 < q.size()) ++i;
        out += q[i];
    }
    return out;
}

std::string render_text(std::string_view tmpl, const PlaceholderValue& value) {
    std::string out;
    substitute(out, tmpl, value, ValueBreaks::space);
    return out;
}

bool atom_char(unsigned char c) {
    // RFC 5322 atext, with the blank between words.
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
           std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string quoted_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A display name as tokens of a phrase: atoms, one quoted string or encoded-words.
void phrase_tokens(std::vector<std::string>& tokens, std::string_view name, bool utf8) {
    bool non_ascii = has_non_ascii(name), marker = has_encoded_word_marker(name);
    if ((non_ascii && !utf8) || marker) {
        for (auto& w : encode_words(name)) tokens.push_back(std::move(w));
        return;
    }
    bool atoms = !non_ascii;
    for (char c : name) atoms = atoms && atom_char(static_cast<unsigned char>(c));
    if (!atoms) {
        tokens.push_back(quoted_string(name));
        return;
    }
    std::size_t pos = 0;
    while (pos < name.size()) {
        std::size_t sp = name.find(' ', pos);
        if (sp != pos) tokens.emplace_back(name.substr(pos, sp == std::string_view::npos ? sp : sp - pos));
        if (sp == std::string_view::npos) break;
        pos = sp + 1;
    }
}

}  // namespace

std::optional<FieldTemplate> FieldTemplate::make(const HeaderField& field, std::string_view raw) {
    FieldTemplate t;
    t.name_ = field.name;
    // The name as written (up to its colon) is never rendered: a value can neither
    // rename a field nor turn it into a line that is no field.
    std::size_t colon = raw.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view body = raw.substr(colon + 1);
    bool in_raw = has_placeholders(raw);  // one in the name too: kept as written, not as a literal line
    std::string decoded = has_encoded_word_marker(field.value) ? decode_words(field.value) : field.value;
    if (is_unstructured(field.name) || is_mailbox_list(field.name)) {
        if (!in_raw && !has_placeholders(decoded)) return std::nullopt;
    } else if (!in_raw) {
        return std::nullopt;
    }
    if (is_unstructured(field.name)) {
        t.kind_ = Kind::unstructured;
        t.value_ = std::move(decoded);
        return t;
    }
    if (is_mailbox_list(field.name)) {
        if (auto parts = split_list(field.value)) {
            t.kind_ = Kind::mailboxes;
            for (std::string_view p : *parts) {
                p = trim(p, blank_chars);
                if (p.empty()) continue;
                Mailbox b;
                std::size_t lt = p.rfind('<');
                if (lt != std::string_view::npos && p.find('>', lt) != std::string_view::npos) {
                    std::string_view disp = trim(p.substr(0, lt), blank_chars);
                    b.display = disp.size() >= 2 && disp.front() == '"' && disp.back() == '"' ? unquote(disp)
                                                                                             : decode_words(disp);
                    b.address = std::string(p.substr(lt + 1, p.find('>', lt) - lt - 1));
                    b.angle = true;
                } else {
                    b.address = std::string(p);
                }
                t.boxes_.push_back(std::move(b));
            }
            if (!t.boxes_.empty()) return t;
            t.boxes_.clear();
        }
    }
    if (!in_raw) return std::nullopt;  // only its encoded-words held placeholders: left as it is
    t.kind_ = Kind::raw;
    t.name_ = std::string(raw.substr(0, colon + 1));
    t.value_ = std::string(body);
    return t;
}

std::string FieldTemplate::render(const PlaceholderValue& value, bool utf8) const {
    if (kind_ == Kind::raw) {
        std::string out = name_;
        substitute(out, value_, value, ValueBreaks::space);
        return out;
    }
    std::vector<std::string> tokens;
    if (kind_ == Kind::unstructured) {
        std::string v = render_text(value_, value);
        if ((has_non_ascii(v) && !utf8) || has_encoded_word_marker(v)) return fold_field(name_, encode_words(v));
        // As written: split at each space, so that joining them gives the same text.
        std::size_t pos = 0;
        for (;;) {
            std::size_t sp = v.find(' ', pos);
            tokens.emplace_back(std::string_view(v).substr(pos, sp == std::string::npos ? sp : sp - pos));
            if (sp == std::string::npos) break;
            pos = sp + 1;
        }
        return fold_field(name_, tokens);
    }
    for (std::size_t i = 0; i < boxes_.size(); ++i) {
        const Mailbox& b = boxes_[i];
        std::string display(trim(render_text(b.display, value), blank_chars));
        std::string address;
        for (char c : render_text(b.address, value))
            if (std::string_view(" \t\r\n<>,").find(c) == std::string_view::npos) address += c;
        if (!display.empty()) phrase_tokens(tokens, display, utf8);
        tokens.push_back(b.angle || !display.empty() ? "<" + address + ">" : address);
        if (i + 1 < boxes_.size()) tokens.back() += ',';
    }
    return fold_field(name_, tokens);
}

std::string FieldTemplate::template_text() const {
    std::string out = value_;
    for (const auto& b : boxes_) out += "\n" + b.display + "\n" + b.address;
    return out;
}

}  // namespace mxlane::mime
