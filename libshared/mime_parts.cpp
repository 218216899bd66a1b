// mime_parts: the leaf parts of a received message, found by walking its multiparts to a bounded depth, bodies decoded.
#include "libshared/mime_parts.hpp"

#include "libshared/address.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/text.hpp"

namespace mxlane::mime {

namespace {

class Walker {
public:
    explicit Walker(std::string_view text) : text_(text), lines_(split_lines(text)) {}

    MessageParts walk() {
        entity(0, lines_.size(), "", 0, 0, true);
        return std::move(out_);
    }

private:
    // One entity over lines [begin, end): header fields, a blank line, a body.
    void entity(std::size_t begin, std::size_t end, const std::string& parent, std::size_t index, int depth,
                bool top) {
        if (out_.leaves.size() >= kMaxLeafParts) return;
        std::size_t blank = begin;
        while (blank < end && !lines_[blank].empty()) ++blank;
        auto fields = parse_header_fields(lines_, begin, blank);
        const HeaderField* ctf = find_header_field(fields, "content-type");
        std::string ct = ctf ? ctf->value : "";
        std::string media = media_type(ct);
        if (media.empty() || media.find('/') == std::string::npos) media = "text/plain";
        std::size_t body = blank < end ? blank + 1 : end;
        std::string boundary = content_type_param(ct, "boundary");
        if (top) out_.header = fields;
        if (media.starts_with("multipart/") && !boundary.empty() && depth < kMaxPartDepth)
            return parts(body, end, ct, boundary, depth + 1);

        LeafPart leaf;
        leaf.media_type = std::move(media);
        leaf.content_type = std::move(ct);
        leaf.parent_type = parent;
        leaf.index = index;
        std::string_view raw = span(body, end);
        const HeaderField* ctef = find_header_field(fields, "content-transfer-encoding");
        std::string cte = ctef ? to_lower(trim(ctef->value)) : "";
        if (cte == "base64")
            leaf.body = base64_decode(raw);
        else if (cte == "quoted-printable")
            leaf.body = qp_decode(raw);
        else
            leaf.body = std::string(raw);
        out_.leaves.push_back(std::move(leaf));
    }

    // A multipart body over lines [begin, end): preamble, parts between
    // delimiter lines, epilogue (RFC 2046 5.1.1).
    void parts(std::size_t begin, std::size_t end, const std::string& ct, const std::string& boundary, int depth) {
        std::string dash = "--" + boundary;
        std::size_t part_start = end, index = 0;
        for (std::size_t i = begin; i < end; ++i) {
            Delimiter kind = delimiter_kind(lines_[i], dash);
            if (kind == Delimiter::none) continue;
            if (part_start != end) entity(part_start, i, ct, index++, depth, false);
            if (kind == Delimiter::close) return;
            part_start = i + 1;
        }
        if (part_start != end) entity(part_start, end, ct, index, depth, false);  // no closing delimiter
    }

    // The text of lines [begin, end); the line end before a delimiter is the
    // delimiter's (RFC 2046 5.1.1), so the last line's end is left out.
    std::string_view span(std::size_t begin, std::size_t end) const {
        if (begin >= end) return {};
        const char* first = lines_[begin].data();
        const char* last = lines_[end - 1].data() + lines_[end - 1].size();
        return text_.substr(static_cast<std::size_t>(first - text_.data()), static_cast<std::size_t>(last - first));
    }

    std::string_view text_;
    std::vector<std::string_view> lines_;
    MessageParts out_;
};

}  // namespace

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t lf = text.find('\n', pos);
        std::size_t stop = lf == std::string_view::npos ? text.size() : lf;
        std::string_view line = text.substr(pos, stop - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        pos = stop + 1;
    }
    return lines;
}

Delimiter delimiter_kind(std::string_view line, std::string_view dash) {
    if (!line.starts_with(dash)) return Delimiter::none;
    std::string_view rest = line.substr(dash.size());
    if (rest.starts_with("--")) return Delimiter::close;
    return trim(rest, wsp_chars).empty() ? Delimiter::part : Delimiter::none;  // else it only begins like one
}

MessageParts walk_parts(std::string_view message) { return Walker(message).walk(); }

std::string_view header_section_of(std::string_view text) {
    std::size_t n = header_section_size(text);
    return n == std::string_view::npos ? text : text.substr(0, n);
}

}  // namespace mxlane::mime
