// fuzz target report_mail: any recipient address, header section and body the MTA hands the milter's report reader.
#include "fuzz/fuzz_input.hpp"
#include "milter/report_mail.hpp"

using namespace mxlane::milter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // recipient NUL header section NUL body
    auto parts = mxlane::fuzz::split_nul(data, size, 3);
    std::string_view rcpt = parts[0], head = parts.size() > 1 ? parts[1] : parts[0],
                     body = parts.size() > 2 ? parts[2] : std::string_view();
    ReportSettings s;
    s.bounce_address = "bounces@shop.test";
    s.unsubscribe_address = "unsubscribe@shop.test";
    s.complaint_address = "fbl@shop.test";
    ReportRecipient r = report_recipient(s, rcpt);
    // A report address with a token always has a non-empty one, and only report kinds have one.
    if ((r.kind == ReportKind::bounce || r.kind == ReportKind::unsubscribe) != !r.token.empty()) __builtin_trap();
    (void)reported_token(s, head);
    ReportMail m;
    (void)m.add_recipient(s, rcpt);
    m.add_header("X-Fuzz", head, false);
    m.end_of_headers();
    if (m.add_body(body)) {
        std::string text = m.text();
        if (text.size() > ReportMail::kMaxReportSize + head.size() + 16) __builtin_trap();
    }
    (void)complaint_rate_exceeded(s, size, body.size());
    return 0;
}
