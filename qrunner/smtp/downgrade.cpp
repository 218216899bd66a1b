// downgrade: 8-bit message -> 7-bit, for a server that does not announce 8BITMIME (RFC 6152 3).
#include "qrunner/smtp/downgrade.hpp"

#include <optional>
#include <vector>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/text.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::smtp {
namespace {

constexpr int kMaxDepth = 20;          // nested multiparts deeper than this are sent as they are

using Lines = std::vector<std::string_view>;

// Wire form -> lines without their CRLF, the dot-stuffing undone.
Lines split_wire(std::string_view wire) {
    Lines out;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        std::size_t end = wire.find("\r\n", pos);
        if (end == std::string_view::npos) end = wire.size();
        std::string_view line = wire.substr(pos, end - pos);
        if (!line.empty() && line.front() == '.') line.remove_prefix(1);
        out.push_back(line);
        pos = end + 2;
    }
    return out;
}

// "type/subtype; a=b; boundary=\"x y\"" -> the media type (lower case) and the boundary.
struct ContentType {
    std::string media;
    std::string boundary;
};

ContentType parse_content_type(std::string_view value) {
    return ContentType{mime::media_type(value), mime::content_type_param(value, "boundary")};
}

class Downgrader {
public:
    explicit Downgrader(const Lines& lines) : lines_(lines) {}

    std::string run() {
        entity(0, lines_.size(), true, 0);
        return std::move(out_);
    }

private:
    void emit(std::string_view line) {
        if (!line.empty() && line.front() == '.') out_ += '.';
        out_ += line;
        out_ += "\r\n";
    }

    void emit_range(std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) emit(lines_[i]);
    }

    // The header fields [begin, end) with the Content-Transfer-Encoding field left out.
    void emit_fields_but_cte(const std::vector<HeaderField>& fields) {
        for (const auto& f : fields)
            if (!same_field_name(f.name, "content-transfer-encoding")) emit_range(f.first_line, f.end_line);
    }

    bool body_has_eight_bit(std::size_t begin, std::size_t end) const {
        for (std::size_t i = begin; i < end; ++i)
            if (has_eight_bit(lines_[i])) return true;
        return false;
    }

    // One entity: header fields, a blank line, a body, over lines [begin, end).
    // top: a whole message (its MIME-ness depends on MIME-Version).
    void entity(std::size_t begin, std::size_t end, bool top, int depth) {
        std::size_t blank = begin;
        while (blank < end && !lines_[blank].empty()) ++blank;
        if (blank == end || depth > kMaxDepth) return emit_range(begin, end);  // no body, or too deep
        auto fields = parse_header_fields(lines_, begin, blank);
        const HeaderField* ctf = find_header_field(fields, "content-type");
        // A message that names a Content-Type is read as MIME even without MIME-Version (as
        // mail readers do): encoding a multipart as one text would garble its parts.
        bool versioned = !top || find_header_field(fields, "mime-version");
        bool mime = versioned || ctf;
        ContentType ct = ctf ? parse_content_type(ctf->value) : ContentType{};
        if (ct.media.empty()) ct.media = "text/plain";
        const HeaderField* ctef = find_header_field(fields, "content-transfer-encoding");
        std::string cte = ctef ? to_lower(ctef->value) : "";
        bool identity = cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary";
        std::size_t body = blank + 1;

        bool multipart = ct.media.starts_with("multipart/") && !ct.boundary.empty();
        if (mime && identity && (multipart || ct.media == "message/rfc822")) {
            // A composite: its parts are converted; it says 7bit once they are.
            if (cte == "8bit" || cte == "binary") {
                emit_fields_but_cte(fields);
                emit("Content-Transfer-Encoding: 7bit");
            } else {
                emit_range(begin, blank);
            }
            emit(lines_[blank]);
            if (multipart)
                parts(body, end, ct.boundary, depth);
            else
                entity(body, end, true, depth + 1);
            return;
        }
        if (!identity || !body_has_eight_bit(body, end)) return emit_range(begin, end);
        // A leaf with 8-bit text: quoted-printable.
        emit_fields_but_cte(fields);
        if (!versioned) emit("MIME-Version: 1.0");
        if (!ctf && top) emit("Content-Type: text/plain; charset=unknown-8bit");
        emit("Content-Transfer-Encoding: quoted-printable");
        emit(lines_[blank]);
        for (std::size_t i = body; i < end; ++i) qp_line(lines_[i]);
    }

    // A multipart body: preamble, parts between delimiter lines, epilogue (RFC 2046 5.1.1).
    void parts(std::size_t begin, std::size_t end, const std::string& boundary, int depth) {
        std::string dash = "--" + boundary;
        std::optional<std::size_t> part_start;
        for (std::size_t i = begin; i < end; ++i) {
            std::string_view line = lines_[i];
            if (!line.starts_with(dash)) continue;
            std::string_view rest = line.substr(dash.size());
            bool close = rest.starts_with("--");
            if (!close && !trim(rest, wsp_chars).empty()) continue;  // a line that only begins like one
            if (part_start)
                entity(*part_start, i, false, depth + 1);
            else
                emit_range(begin, i);  // the preamble
            emit(line);
            if (close) return emit_range(i + 1, end);  // the epilogue
            part_start = i + 1;
        }
        if (part_start)
            entity(*part_start, end, false, depth + 1);  // no closing delimiter: the part runs to the end
        else
            emit_range(begin, end);
    }

    void qp_line(std::string_view line) {
        std::string encoded = mime::qp_encode(line);
        std::size_t pos = 0;
        for (;;) {
            std::size_t end = encoded.find("\r\n", pos);
            emit(std::string_view(encoded).substr(pos, end == std::string::npos ? end : end - pos));
            if (end == std::string::npos) return;
            pos = end + 2;
        }
    }

    const Lines& lines_;
    std::string out_;
};

}  // namespace

std::string downgrade_to_7bit(std::string_view wire) {
    Lines lines = split_wire(wire);
    return Downgrader(lines).run();
}

std::string quoted_printable(std::string_view body) { return mime::qp_encode(body); }

}  // namespace mxlane::smtp
