// render_plan: a message template parsed once (MIME parts, charsets, transfer encodings) and rendered per recipient.
#include "libshared/render_plan.hpp"

#include <algorithm>
#include <deque>
#include <optional>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/text.hpp"

namespace mxlane::mime {

constexpr int kMaxDepth = 20;          // parts nested deeper are copied as they are
constexpr std::size_t kMaxLine = 998;  // RFC 5322 2.1.1

struct RenderPlan::Piece {
    // raw: a range outside the decoded pieces that holds placeholders as written (a
    // Content-Disposition filename, a non-text part's text): rendered as written,
    // line breaks in values made spaces, so that they cannot add a line.
    enum class Kind { literal, raw, field, part } kind = Kind::literal;
    std::size_t a = 0, b = 0;  // literal, raw: text_[a, b); field, part: index a
};

// A text part with placeholders: its header fields and its decoded text.
struct RenderPlan::Part {
    std::vector<std::pair<std::size_t, std::size_t>> fields;  // its other fields, ranges of text_
    std::string ct_field, cte_field;  // as stored (line ends included); "" when absent
    std::string ct_value;             // unfolded
    std::string cte;                  // lower case; "" when absent
    std::string charset;              // lower case; "" when none is named
    bool mime = true;                 // false: a message without MIME-Version or Content-Type
    std::string content;              // decoded, CRLF line breaks, no final one
    std::optional<std::string> content_utf8;  // content in UTF-8, when the charset is another one
    std::vector<std::string> boundaries;      // "--" + each enclosing multipart's boundary
};

namespace {

// The Content-Type value with its charset parameter set to utf-8.
std::string with_utf8_charset(std::string_view value) {
    std::string out;
    bool done = false, quoted = false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i < value.size()) {
            if (quoted && value[i] == '\\') ++i;
            else if (value[i] == '"') quoted = !quoted;
            if (i < value.size() && (quoted || value[i] != ';')) continue;
        }
        // One parameter (or the media type), a ';' outside quotes after it.
        std::string_view p = trim(value.substr(start, std::min(i, value.size()) - start), blank_chars);
        if (start > 0 && to_lower(p.substr(0, 8)) == "charset=") {
            p = "charset=utf-8";
            done = true;
        }
        if (!p.empty()) out += (out.empty() ? "" : "; ") + std::string(p);
        start = i + 1;
    }
    if (out.empty()) out = "text/plain";
    if (!done) out += "; charset=utf-8";
    return out;
}

bool identity(std::string_view cte) { return cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary"; }

struct Line {
    std::size_t begin = 0, end = 0, next = 0;  // content [begin, end), line end included up to next
};

}  // namespace

class PlanBuilder {
public:
    explicit PlanBuilder(RenderPlan& plan) : p_(plan), text_(plan.text_) {
        std::size_t pos = 0;
        while (pos < text_.size()) {
            std::size_t nl = text_.find('\n', pos);
            std::size_t next = nl == std::string_view::npos ? text_.size() : nl + 1;
            std::size_t end = nl == std::string_view::npos ? text_.size() : nl;
            if (end > pos && text_[end - 1] == '\r') --end;
            lines_.push_back({pos, end, next});
            views_.push_back(text_.substr(pos, end - pos));
            pos = next;
        }
    }

    void run() {
        entity(0, lines_.size(), true, {}, 0);
        for (auto& piece : p_.pieces_)
            if (piece.kind == RenderPlan::Piece::Kind::literal &&
                has_placeholders(text_.substr(piece.a, piece.b - piece.a)))
                piece.kind = RenderPlan::Piece::Kind::raw;
    }

private:
    std::size_t at(std::size_t line) const { return line < lines_.size() ? lines_[line].begin : text_.size(); }

    void literal(std::size_t a, std::size_t b) {
        if (a >= b) return;
        auto& ps = p_.pieces_;
        if (!ps.empty() && ps.back().kind == RenderPlan::Piece::Kind::literal && ps.back().b == a) ps.back().b = b;
        else ps.push_back({RenderPlan::Piece::Kind::literal, a, b});
    }

    void lines(std::size_t begin, std::size_t end) { literal(at(begin), at(end)); }

    // The message's own header fields, each a template when it holds placeholders; `skip` left out.
    void top_fields(const std::vector<HeaderField>& fields, std::size_t begin, std::size_t blank,
                    const std::vector<const HeaderField*>& skip = {}) {
        std::size_t done = begin;
        for (const auto& f : fields) {
            bool skipped = std::find(skip.begin(), skip.end(), &f) != skip.end();
            std::string_view raw = text_.substr(at(f.first_line), at(f.end_line) - at(f.first_line));
            auto t = skipped || f.name.empty() ? std::nullopt : FieldTemplate::make(f, raw);
            if (!t && !skipped) continue;
            lines(done, f.first_line);
            done = f.end_line;
            if (t) {
                p_.pieces_.push_back({RenderPlan::Piece::Kind::field, p_.fields_.size(), 0});
                p_.fields_.push_back(std::move(*t));
            }
        }
        lines(done, blank);
    }

    void entity(std::size_t begin, std::size_t end, bool top, const std::vector<std::string>& bounds, int depth) {
        std::size_t blank = begin;
        while (blank < end && !views_[blank].empty()) ++blank;
        auto fields = parse_header_fields(views_, begin, blank);
        if (blank == end || depth > kMaxDepth) {  // no body
            if (top) top_fields(fields, begin, end);
            else lines(begin, end);
            return;
        }
        const HeaderField* ctf = find_header_field(fields, "content-type");
        const HeaderField* ctef = find_header_field(fields, "content-transfer-encoding");
        bool mime = !top || find_header_field(fields, "mime-version") || ctf;
        std::string media = ctf ? media_type(ctf->value) : "text/plain";
        // Without MIME-Version and Content-Type a message is plain text, whatever else it says.
        std::string cte = ctef && mime ? to_lower(trim(ctef->value, blank_chars)) : "";
        std::string boundary = ctf ? content_type_param(ctf->value, "boundary") : "";
        if (mime && identity(cte) && media.starts_with("multipart/") && !boundary.empty()) {
            if (top) top_fields(fields, begin, blank);
            else lines(begin, blank);
            lines(blank, blank + 1);
            auto inner = bounds;
            inner.push_back("--" + boundary);
            return multipart(blank + 1, end, inner, depth);
        }
        std::optional<RenderPlan::Part> part;
        if (media.starts_with("text/") && (identity(cte) || cte == "quoted-printable" || cte == "base64"))
            part = leaf(blank + 1, end, cte);
        if (!part) {
            if (top) top_fields(fields, begin, blank);
            else lines(begin, blank);
            return lines(blank, end);
        }
        part->ct_value = ctf ? ctf->value : "";
        part->cte = cte;
        part->charset = ctf ? to_lower(content_type_param(ctf->value, "charset")) : "";
        part->mime = mime;
        part->boundaries = bounds;
        auto raw = [&](const HeaderField* f) {
            return f ? std::string(text_.substr(at(f->first_line), at(f->end_line) - at(f->first_line))) : "";
        };
        part->ct_field = raw(ctf);
        part->cte_field = raw(ctef);
        if (!part->charset.empty() && !is_utf8_charset(part->charset))
            part->content_utf8 = convert_charset(part->content, part->charset, "UTF-8");
        if (top) {
            top_fields(fields, begin, blank, {ctf, ctef});
        } else {
            for (const auto& f : fields)
                if (&f != ctf && &f != ctef) part->fields.emplace_back(at(f.first_line), at(f.end_line));
        }
        p_.pieces_.push_back({RenderPlan::Piece::Kind::part, p_.parts_.size(), 0});
        p_.parts_.push_back(std::move(*part));
        // The line end before a delimiter belongs to the delimiter (RFC 2046 5.1.1): the part re-adds it.
    }

    // A leaf's decoded text when it holds placeholders.
    std::optional<RenderPlan::Part> leaf(std::size_t begin, std::size_t end, const std::string& cte) {
        std::string body;
        for (std::size_t i = begin; i < end; ++i) {
            if (i > begin) body += "\r\n";
            body += views_[i];
        }
        RenderPlan::Part part;
        part.content = cte == "quoted-printable" ? qp_decode(body) : cte == "base64" ? base64_decode(body) : body;
        if (cte == "base64") {  // canonical text: CRLF line breaks
            std::string crlf;
            for (std::size_t i = 0; i < part.content.size(); ++i) {
                char c = part.content[i];
                if (c == '\r' || c == '\n') {
                    if (c == '\r' && i + 1 < part.content.size() && part.content[i + 1] == '\n') ++i;
                    crlf += "\r\n";
                } else {
                    crlf += c;
                }
            }
            part.content = std::move(crlf);
        }
        if (!has_placeholders(part.content)) return std::nullopt;
        return part;
    }

    void multipart(std::size_t begin, std::size_t end, const std::vector<std::string>& bounds, int depth) {
        const std::string& dash = bounds.back();
        std::optional<std::size_t> part_start;
        for (std::size_t i = begin; i < end; ++i) {
            std::string_view line = views_[i];
            if (!line.starts_with(dash)) continue;
            std::string_view rest = line.substr(dash.size());
            bool close = rest.starts_with("--");
            if (!close && !trim(rest, blank_chars).empty()) continue;
            if (part_start) entity(*part_start, i, false, bounds, depth + 1);
            else lines(begin, i);  // the preamble
            lines(i, i + 1);
            if (close) return lines(i + 1, end);  // the epilogue
            part_start = i + 1;
        }
        if (part_start) entity(*part_start, end, false, bounds, depth + 1);
        else lines(begin, end);
    }

    RenderPlan& p_;
    std::string_view text_;
    std::vector<Line> lines_;
    std::vector<std::string_view> views_;
};

RenderPlan::RenderPlan(std::string text) : text_(std::move(text)) { PlanBuilder(*this).run(); }
RenderPlan::~RenderPlan() = default;
RenderPlan::RenderPlan(RenderPlan&&) noexcept = default;
RenderPlan& RenderPlan::operator=(RenderPlan&&) noexcept = default;

bool RenderPlan::personalised() const {
    return !fields_.empty() || !parts_.empty() ||
           std::any_of(pieces_.begin(), pieces_.end(), [](const Piece& p) { return p.kind == Piece::Kind::raw; });
}

std::string RenderPlan::template_text() const {
    std::string out;
    for (const auto& p : pieces_)
        if (p.kind == Piece::Kind::raw) out.append(text_, p.a, p.b - p.a).append("\n");
    for (const auto& f : fields_) out += f.template_text() + "\n";
    for (const auto& p : parts_) out += p.content + "\n";
    return out;
}

namespace {

// Does a line of `text` start with one of the delimiters, or run over 998 bytes?
bool unsafe_lines(std::string_view text, const std::vector<std::string>& bounds) {
    std::size_t pos = 0;
    for (;;) {
        std::size_t end = text.find("\r\n", pos);
        std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
        if (line.size() > kMaxLine) return true;
        for (const auto& b : bounds)
            if (line.starts_with(b)) return true;
        if (end == std::string_view::npos) return false;
        pos = end + 2;
    }
}

std::string render_part(const RenderPlan::Part& p, std::string_view text, const PlaceholderValue& value) {
    // Values in the part's charset, when it is not UTF-8 and each has a form there.
    std::deque<std::string> converted;
    bool relabel = false, unrepresentable = false;
    const std::string* tmpl = &p.content;
    bool ascii_label = is_ascii_charset(p.charset) || (p.charset.empty() && (p.mime || !has_non_ascii(p.content)));
    PlaceholderValue in_charset = value;
    if (ascii_label) {
        in_charset = [&](std::string_view name) -> std::optional<std::string_view> {
            auto v = value(name);
            if (v && has_non_ascii(*v)) relabel = true;
            return v;
        };
    } else if (!p.charset.empty() && !is_utf8_charset(p.charset)) {
        in_charset = [&](std::string_view name) -> std::optional<std::string_view> {
            auto v = value(name);
            if (!v || !has_non_ascii(*v)) return v;
            auto c = convert_charset(*v, "UTF-8", p.charset);
            if (!c) {
                unrepresentable = true;
                return v;
            }
            return converted.emplace_back(std::move(*c));
        };
    }
    std::string body;
    substitute(body, *tmpl, in_charset, ValueBreaks::crlf);
    if (unrepresentable && p.content_utf8) {
        relabel = true;
        body.clear();
        substitute(body, *p.content_utf8, value, ValueBreaks::crlf);
    }
    std::string cte = p.cte;
    if (identity(cte)) {
        bool seven = cte.empty() || cte == "7bit";
        if ((seven && has_non_ascii(body) && (relabel || p.mime)) || unsafe_lines(body, p.boundaries))
            cte = "quoted-printable";
    }
    std::string out;
    for (const auto& [a, b] : p.fields) out += text.substr(a, b - a);
    const bool upgrade = !p.mime && (cte != p.cte || relabel);  // a plain message becomes MIME
    if (upgrade) out += "MIME-Version: 1.0\r\n";
    if (relabel || upgrade) out += "Content-Type: " + with_utf8_charset(p.ct_value) + "\r\n";
    else out += p.ct_field;
    if (cte != p.cte) out += "Content-Transfer-Encoding: " + cte + "\r\n";
    else out += p.cte_field;
    out += "\r\n";
    if (cte == "quoted-printable") out += qp_encode(body);
    else if (cte == "base64") out += base64_encode(body);
    else out += body;
    out += "\r\n";
    return out;
}

}  // namespace

std::string RenderPlan::render(const PlaceholderValue& value, bool utf8) const {
    std::string out;
    out.reserve(text_.size() + text_.size() / 8 + 256);
    for (const auto& piece : pieces_) {
        switch (piece.kind) {
            case Piece::Kind::literal: out.append(text_, piece.a, piece.b - piece.a); break;
            case Piece::Kind::raw:
                substitute(out, std::string_view(text_).substr(piece.a, piece.b - piece.a), value, ValueBreaks::space);
                break;
            case Piece::Kind::field: out += fields_[piece.a].render(value, utf8); break;
            case Piece::Kind::part: out += render_part(parts_[piece.a], text_, value); break;
        }
    }
    return out;
}

std::string render_message(const RenderPlan& plan, const std::vector<std::string>& names,
                           const std::vector<std::string>& values, std::string_view address, bool utf8) {
    return plan.render(
        [&](std::string_view name) -> std::optional<std::string_view> {
            if (name == "address") return address;
            auto it = std::find(names.begin(), names.end(), name);
            if (it == names.end()) return std::nullopt;
            auto i = static_cast<std::size_t>(it - names.begin());
            return i < values.size() ? std::string_view(values[i]) : std::string_view();
        },
        utf8);
}

std::string rename_placeholder_mime(const std::string& text, std::string_view from, std::string_view to) {
    RenderPlan plan(text);
    auto names = placeholders(plan.template_text());
    if (std::find(names.begin(), names.end(), from) == names.end()) return text;
    const std::string renamed = "{{" + std::string(to) + "}}";
    return plan.render(
        [&](std::string_view name) -> std::optional<std::string_view> {
            if (name == from) return std::string_view(renamed);
            return std::nullopt;
        },
        false);
}

}  // namespace mxlane::mime
