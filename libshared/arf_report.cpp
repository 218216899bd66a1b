// arf_report: feedback-loop complaints read: RFC 5965 reports and the common non-conforming shapes.
#include "libshared/arf_report.hpp"

#include <algorithm>
#include <vector>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/mime_parts.hpp"
#include "libshared/report_text.hpp"
#include "libshared/text.hpp"

namespace mxlane {

namespace {

// The fields of a feedback report: its non-blank lines (RFC 5965 3.1 has no
// blank line among them, but a stray one must not hide the rest).
std::vector<HeaderField> report_fields(std::string_view body) {
    std::vector<std::string_view> lines;
    for (std::string_view l : mime::split_lines(body))
        if (!trim(l).empty()) lines.push_back(l);
    return parse_header_fields(lines, 0, lines.size());
}

// The fields of a text/plain part that holds a feedback report's fields
// instead of a message/feedback-report part: inside a multipart/report all
// of its lines; elsewhere only a first paragraph made of nothing but fields
// (a person's text that quotes a field is not a report).
std::vector<HeaderField> plain_fields(const mime::LeafPart& p) {
    if (p.media_type != "text/plain") return {};
    if (mime::media_type(p.parent_type) == "multipart/report") return report_fields(p.body);
    std::string_view body = p.body;
    body.remove_prefix(std::min(body.size(), body.find_first_not_of("\r\n")));
    auto fields = parse_header_section(body);
    for (const auto& f : fields)
        if (f.name.empty() || f.name.find_first_of(" \t") != std::string::npos) return {};
    return fields;
}

std::string value(const std::vector<HeaderField>& fields, std::string_view name) {
    const HeaderField* f = find_header_field(fields, name);
    return f ? single_line_value(f->value) : "";
}

bool holds_headers(const mime::LeafPart& p) {
    const std::string& m = p.media_type;
    if (m == "message/rfc822" || m == "message/global" || m == "text/rfc822-headers" ||
        m == "message/rfc822-headers" || m == "message/global-headers")
        return true;
    // The third part of a report sent as plain text: the reported header, when it reads as one.
    if (p.index != 2 || m != "text/plain" || mime::media_type(p.parent_type) != "multipart/report") return false;
    std::size_t colon = p.body.find(':');
    return colon != std::string::npos && colon > 0 && p.body.substr(0, colon).find_first_of(" \t\r\n") == std::string::npos;
}

}  // namespace

std::optional<ArfReport> parse_arf(std::string_view message) {
    try {
        mime::MessageParts parts = mime::walk_parts(message);
        std::vector<HeaderField> fields;
        const mime::LeafPart* report_part = nullptr;
        for (const auto& p : parts.leaves)
            if (p.media_type == "message/feedback-report") {
                report_part = &p;
                break;
            }
        if (report_part) fields = report_fields(report_part->body);
        for (std::size_t i = 0; !report_part && i < parts.leaves.size(); ++i)
            if (auto f = plain_fields(parts.leaves[i]); find_header_field(f, "feedback-type")) {
                report_part = &parts.leaves[i];
                fields = std::move(f);
            }
        if (!report_part) return std::nullopt;

        ArfReport r;
        std::string type = report::without_comments(value(fields, "feedback-type"));
        r.feedback_type = to_lower(type.substr(0, type.find(' ')));
        if (r.feedback_type.empty()) return std::nullopt;
        r.user_agent = value(fields, "user-agent");
        r.version = report::without_comments(value(fields, "version"));
        r.original_rcpt_to = report::typed_address(value(fields, "original-rcpt-to"));
        r.original_mail_from = report::typed_address(value(fields, "original-mail-from"));
        r.reported_domain = report::without_comments(value(fields, "reported-domain"));
        r.source_ip = report::without_comments(value(fields, "source-ip"));
        r.arrival_date = value(fields, "arrival-date");
        if (r.arrival_date.empty()) r.arrival_date = value(fields, "received-date");  // RFC 5965 3.2's older name
        for (const auto& p : parts.leaves)
            if (&p != report_part && holds_headers(p)) {
                r.original_headers = std::string(mime::header_section_of(p.body));
                break;
            }
        return r;
    } catch (...) {
        return std::nullopt;  // std::bad_alloc on a hostile size: not a report we can read
    }
}

}  // namespace mxlane
