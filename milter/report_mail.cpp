// report_mail: which mail is a report (its recipients), the report collected as it arrives, the token in a reported message.
#include "milter/report_mail.hpp"

#include <utility>

#include "libshared/address.hpp"
#include "libshared/delivery_report.hpp"
#include "libshared/recipient_token.hpp"

namespace mxlane::milter {
namespace {

bool same_address(std::string_view a, std::string_view b) { return !a.empty() && to_lower(a) == to_lower(b); }

}  // namespace

ReportRecipient report_recipient(const ReportSettings& s, std::string_view address) {
    const std::string a = strip_brackets(address);
    if (!s.bounce_address.empty())
        if (auto t = token_of(a, s.bounce_address, s.delimiter); !t.empty()) return {ReportKind::bounce, t};
    if (!s.unsubscribe_address.empty())
        if (auto t = token_of(a, s.unsubscribe_address, s.delimiter); !t.empty()) return {ReportKind::unsubscribe, t};
    if (same_address(s.complaint_address, a)) return {ReportKind::complaint, {}};
    return {};
}

std::string reported_token(const ReportSettings& s, std::string_view header_section) {
    if (!s.bounce_address.empty())
        if (auto t = token_of(header_field(header_section, "Return-Path"), s.bounce_address, s.delimiter); !t.empty())
            return t;
    // List-Unsubscribe: <mailto:LOCAL+TOKEN@DOMAIN?subject=...>, <https://host/u/TOKEN>
    const std::string lu = header_field(header_section, "List-Unsubscribe");
    std::size_t at = 0;
    while ((at = lu.find('<', at)) != std::string::npos) {
        const auto end = lu.find('>', at);
        if (end == std::string::npos) break;
        std::string uri = lu.substr(at + 1, end - at - 1);
        at = end;
        if (uri.size() > 7 && to_lower(uri.substr(0, 7)) == "mailto:") {
            std::string addr = uri.substr(7, uri.find('?') == std::string::npos ? std::string::npos : uri.find('?') - 7);
            if (!s.unsubscribe_address.empty())
                if (auto t = token_of(addr, s.unsubscribe_address, s.delimiter); !t.empty()) return t;
        } else if (to_lower(uri).starts_with("http")) {
            if (auto q = uri.find_first_of("?#"); q != std::string::npos) uri.erase(q);
            while (!uri.empty() && uri.back() == '/') uri.pop_back();
            const auto slash = uri.rfind('/');
            if (slash != std::string::npos && slash + 1 < uri.size()) return uri.substr(slash + 1);
        }
    }
    return "";
}

bool complaint_rate_exceeded(const ReportSettings& s, std::uint64_t complaints, std::uint64_t delivered) {
    if (delivered == 0 || delivered < s.complaint_min_delivered) return false;
    return static_cast<double>(complaints) * 100.0 > s.max_complaint_rate * static_cast<double>(delivered);
}

bool ReportMail::add_recipient(const ReportSettings& s, std::string_view address) {
    auto r = report_recipient(s, address);
    if (r.kind == ReportKind::none) return false;
    recipients_.push_back(std::move(r));
    return true;
}

void ReportMail::add_header(std::string_view name, std::string_view value, bool lead_space) {
    text_.append(name);
    text_ += ':';
    if (!lead_space) text_ += ' ';
    text_.append(value);
    text_ += '\n';
}

bool ReportMail::add_body(std::string_view chunk) {
    if (text_.size() + chunk.size() > kMaxReportSize) return false;
    text_.append(chunk);
    return true;
}

std::string ReportMail::text() const {
    std::string out;
    out.reserve(text_.size());
    for (std::size_t i = 0; i < text_.size(); ++i) {
        if (text_[i] == '\r' && i + 1 < text_.size() && text_[i + 1] == '\n') continue;
        out += text_[i];
    }
    return out;
}

}  // namespace mxlane::milter
