// smtp_reply: SMTP reply and enhanced status code parsing, temporary/permanent class.
#include "libshared/smtp_reply.hpp"

namespace mxlane {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// 1 to 3 digits (RFC 3463 2: subject and detail are 1*3digit).
std::size_t digits_at(std::string_view s, std::size_t i) {
    std::size_t n = 0;
    while (i + n < s.size() && n < 4 && is_digit(s[i + n])) ++n;
    return n >= 1 && n <= 3 ? n : 0;
}

// The line's text with a leading copy of `enhanced` (and its space) removed.
std::string_view strip_enhanced(std::string_view line, const std::string& enhanced) {
    if (enhanced.empty() || line.substr(0, enhanced.size()) != enhanced) return line;
    line.remove_prefix(enhanced.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    return line;
}

}  // namespace

std::string enhanced_code_prefix(std::string_view text, int code) {
    // RFC 3463 2: class "." subject "." detail; class is 2, 4 or 5.
    if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5')) return {};
    if (text[0] - '0' != code / 100 || text[1] != '.') return {};
    std::size_t subject = digits_at(text, 2);
    if (subject == 0 || 2 + subject >= text.size() || text[2 + subject] != '.') return {};
    std::size_t detail_at = 3 + subject;
    std::size_t detail = digits_at(text, detail_at);
    if (detail == 0) return {};
    std::size_t end = detail_at + detail;
    if (end < text.size() && text[end] != ' ' && text[end] != '\t') return {};
    return std::string(text.substr(0, end));
}

std::string Reply::dsn(std::string_view fallback) const {
    if (!enhanced.empty()) return enhanced;
    if (!fallback.empty()) return std::string(fallback);
    int cls = code / 100;
    if (cls == 2 || cls == 4 || cls == 5) return std::to_string(cls) + ".0.0";
    return "4.0.0";
}

std::string Reply::str() const {
    std::string out = std::to_string(code);
    if (!enhanced.empty()) out += ' ' + enhanced;
    if (!text.empty()) out += ' ' + text;
    return out;
}

Reply Reply::make(int code, std::string enhanced, std::string text) {
    Reply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.text = std::move(text);
    r.lines.push_back(r.text);
    r.synthetic = true;
    return r;
}

void ReplyParser::feed(std::string_view bytes) {
    if (!error_.empty()) return;
    compact();
    buf_.append(bytes);
}

void ReplyParser::reset() {
    buf_.clear();
    pos_ = 0;
    partial_ = Reply{};
    partial_bytes_ = 0;
    error_.clear();
}

void ReplyParser::compact() {
    if (pos_ == 0) return;
    buf_.erase(0, pos_);
    pos_ = 0;
}

ReplyParser::Status ReplyParser::fail(std::string why) {
    error_ = std::move(why);
    buf_.clear();
    pos_ = 0;
    return Status::malformed;
}

ReplyParser::Status ReplyParser::next(Reply& out) {
    if (!error_.empty()) return Status::malformed;
    for (;;) {
        std::size_t nl = buf_.find('\n', pos_);
        if (nl == std::string::npos) {
            if (buffered() > max_line + 2)
                return fail("reply line longer than " + std::to_string(max_line) + " bytes");
            return Status::incomplete;
        }
        std::string_view line(buf_.data() + pos_, nl - pos_);
        pos_ = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > max_line)
            return fail("reply line longer than " + std::to_string(max_line) + " bytes");

        // RFC 5321 4.2: Reply-code [ SP / "-" textstring ] CRLF, code 2yz..5yz.
        bool numeric = line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && is_digit(line[1]) &&
                       is_digit(line[2]) && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
        if (!numeric) {
            std::string shown(line.substr(0, 40));
            for (char& c : shown)
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
            return fail("malformed reply line \"" + shown + (line.size() > 40 ? "...\"" : "\""));
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (!partial_.lines.empty() && code != partial_.code)
            return fail("reply code changed from " + std::to_string(partial_.code) + " to " +
                        std::to_string(code) + " within a multi-line reply");
        partial_bytes_ += line.size() + 2;
        if (partial_bytes_ > max_reply)
            return fail("reply longer than " + std::to_string(max_reply) + " bytes");
        partial_.code = code;
        partial_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
        if (line.size() > 3 && line[3] == '-') continue;

        // Last line: the enhanced code is taken from the first line; RFC 2034
        // repeats it on every line, so a repeated copy is left out of `text`.
        out = std::move(partial_);
        partial_ = Reply{};
        partial_bytes_ = 0;
        out.enhanced = enhanced_code_prefix(out.lines.front(), out.code);
        for (const auto& l : out.lines) {
            std::string_view t = strip_enhanced(l, out.enhanced);
            if (t.empty()) continue;
            if (!out.text.empty()) out.text += ' ';
            out.text.append(t);
        }
        if (pos_ == buf_.size()) compact();
        return Status::complete;
    }
}

}  // namespace mxlane
