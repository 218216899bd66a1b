// dsn_report: delivery status notifications read: RFC 3464/6533 reports, and the common non-standard bounces.
#include "libshared/dsn_report.hpp"

#include "libshared/address.hpp"
#include "libshared/bounce_text.hpp"
#include "libshared/header_section.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/mime_parts.hpp"
#include "libshared/report_text.hpp"
#include "libshared/text.hpp"

namespace mxlane {

namespace {

bool is_status_part(const mime::LeafPart& p) {
    if (p.media_type == "message/delivery-status" || p.media_type == "message/global-delivery-status") return true;
    // Some senders label the second part of a delivery report text/plain.
    return p.index == 1 && p.media_type == "text/plain" && mime::media_type(p.parent_type) == "multipart/report" &&
           to_lower(mime::content_type_param(p.parent_type, "report-type")) == "delivery-status";
}

std::string field(const std::vector<HeaderField>& fields, std::string_view name) {
    const HeaderField* f = find_header_field(fields, name);
    return f ? f->value : "";
}

// "failed (permanent)" -> "failed".
std::string first_word_lower(std::string_view value) {
    std::string v = report::without_comments(value);
    return to_lower(v.substr(0, v.find(' ')));
}

std::string default_status(std::string_view action) {
    if (action == "failed") return "5.0.0";
    if (action == "delayed") return "4.0.0";
    if (action == "delivered" || action == "relayed" || action == "expanded") return "2.0.0";
    return "";
}

std::string action_for(std::string_view status) {
    if (status.starts_with("5")) return "failed";
    if (status.starts_with("4")) return "delayed";
    if (status.starts_with("2")) return "delivered";
    return "";
}

// One per-recipient field group (RFC 3464 2.3); nullopt when it names no recipient.
std::optional<DsnRecipient> recipient_group(const std::vector<HeaderField>& fields) {
    DsnRecipient r;
    r.final_recipient = report::typed_address(field(fields, "final-recipient"));
    r.original_recipient = report::typed_address(field(fields, "original-recipient"));
    if (r.final_recipient.empty()) r.final_recipient = report::typed_address(field(fields, "x-actual-recipient"));
    if (r.final_recipient.empty() && r.original_recipient.empty()) return std::nullopt;
    r.diagnostic = single_line_value(report::after_type(field(fields, "diagnostic-code")));
    r.remote_mta = std::string(report::after_type(report::without_comments(field(fields, "remote-mta"))));
    r.action = first_word_lower(field(fields, "action"));
    r.status = report::find_enhanced_code(report::without_comments(field(fields, "status")));
    std::string said = report::find_enhanced_code(r.diagnostic);
    if (r.status.empty()) r.status = report::status_in_text(r.diagnostic, default_status(r.action));
    // "Status: 5.0.0" beside "550 5.1.1 ..." (as Exim writes): the server's code says more.
    else if (r.status.ends_with(".0.0") && !said.empty() && said[0] == r.status[0]) r.status = said;
    if (r.action.empty()) r.action = action_for(r.status);
    return r;
}

// The field groups of a delivery-status body, separated by blank lines.
std::optional<DsnReport> read_status_body(std::string_view body) {
    DsnReport report;
    report.format = "rfc3464";
    auto lines = mime::split_lines(body);
    std::size_t i = 0;
    while (i < lines.size() && report.recipients.size() < kMaxDsnRecipients) {
        while (i < lines.size() && trim(lines[i]).empty()) ++i;
        std::size_t begin = i;
        while (i < lines.size() && !trim(lines[i]).empty()) ++i;
        if (begin == i) break;
        auto fields = parse_header_fields(lines, begin, i);
        if (report.original_envelope_id.empty())
            report.original_envelope_id = report::without_comments(field(fields, "original-envelope-id"));
        if (auto r = recipient_group(fields)) report.recipients.push_back(std::move(*r));
    }
    if (report.recipients.empty()) return std::nullopt;
    return report;
}

// The header section of the returned message, from the part that holds it.
std::string returned_headers(const mime::MessageParts& parts) {
    for (const auto& p : parts.leaves) {
        const std::string& m = p.media_type;
        if (m == "text/rfc822-headers" || m == "message/rfc822-headers" || m == "message/global-headers" ||
            m == "message/rfc822" || m == "message/global")
            return std::string(mime::header_section_of(p.body));
    }
    return "";
}

// A recipient whose group has no Diagnostic-Code gets what the report's
// own text says about the same address, when a text reader finds it.
void diagnostics_from_text(DsnReport& report, const mime::MessageParts& parts) {
    bool missing = false;
    for (const auto& r : report.recipients) missing = missing || r.diagnostic.empty();
    if (!missing) return;
    auto text = report::read_text_bounce(parts);
    if (!text) return;
    for (auto& r : report.recipients) {
        if (!r.diagnostic.empty()) continue;
        for (const auto& t : text->recipients)
            if (to_lower(t.final_recipient) == to_lower(r.final_recipient)) {
                r.diagnostic = t.diagnostic;
                if (r.remote_mta.empty()) r.remote_mta = t.remote_mta;
                break;
            }
    }
}

}  // namespace

std::optional<DsnReport> parse_dsn(std::string_view message) {
    try {
        mime::MessageParts parts = mime::walk_parts(message);
        std::optional<DsnReport> report;
        for (const auto& p : parts.leaves)
            if (is_status_part(p) && (report = read_status_body(p.body))) break;
        if (report)
            diagnostics_from_text(*report, parts);
        else
            report = report::read_text_bounce(parts);
        if (!report) return std::nullopt;
        if (std::string h = returned_headers(parts); !h.empty()) report->original_message_headers = std::move(h);
        return report;
    } catch (...) {
        return std::nullopt;  // std::bad_alloc on a hostile size: not a report we can read
    }
}

}  // namespace mxlane
