// report_mail: which mail is a report (its recipients), the report collected as it arrives, the token in a reported message.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::milter {

// The addresses reports arrive at (params of the same names) and what follows from them.
struct ReportSettings {
    std::string queue_directory;
    std::string bounce_address, unsubscribe_address, complaint_address;
    std::string delimiter = "+";
    double max_complaint_rate = 0.3;  // percent
    std::uint64_t complaint_min_delivered = 1000;
    // The events of what reports change (event_log, event_webhook's spool, event_fields).
    std::string event_log;
    bool event_webhook = false;
    std::vector<std::string> event_fields;
    bool events_on() const { return !event_log.empty() || event_webhook; }
    bool on() const { return !bounce_address.empty() || !unsubscribe_address.empty() || !complaint_address.empty(); }
};

enum class ReportKind { none, bounce, unsubscribe, complaint };

// What one envelope recipient makes of a message: bounce_address+TOKEN,
// unsubscribe_address+TOKEN (TOKEN as written, not yet verified) or
// complaint_address; kind none for any other address.
struct ReportRecipient {
    ReportKind kind = ReportKind::none;
    std::string token;
};
ReportRecipient report_recipient(const ReportSettings& s, std::string_view address);

// The TOKEN of a reported message (a complaint's copy): from its Return-Path
// (bounce_address+TOKEN), else from its List-Unsubscribe (the mailto
// unsubscribe_address+TOKEN, or the last path segment of an http(s) URL). "" when none.
std::string reported_token(const ReportSettings& s, std::string_view header_section);

// True when `complaints` exceed max_complaint_rate percent of `delivered`,
// once delivered reaches complaint_min_delivered.
bool complaint_rate_exceeded(const ReportSettings& s, std::uint64_t complaints, std::uint64_t delivered);

// A message collected while it arrives, as long as every recipient is a
// report address and it stays within kMaxReportSize.
class ReportMail {
public:
    static constexpr std::size_t kMaxReportSize = 1024 * 1024;
    // false: the address is no report address (the message is not a report).
    bool add_recipient(const ReportSettings& s, std::string_view address);
    void add_header(std::string_view name, std::string_view value, bool lead_space);
    void end_of_headers() { text_ += '\n'; }
    // false: over kMaxReportSize (the message is left to the MTA).
    bool add_body(std::string_view chunk);
    const std::vector<ReportRecipient>& recipients() const { return recipients_; }
    // The whole message, line ends made LF.
    std::string text() const;

private:
    std::vector<ReportRecipient> recipients_;
    std::string text_;
};

}  // namespace mxlane::milter
