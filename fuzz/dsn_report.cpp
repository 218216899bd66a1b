// fuzz target dsn_report: any message is read as a delivery report or refused, never with a crash, and what is read is well formed.
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "libshared/delivery_report.hpp"
#include "libshared/mime_parts.hpp"

using namespace mxlane;

namespace {

bool one_line(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

bool status_shape(const std::string& s) {
    if (s.empty()) return true;
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
    for (char c : s)
        if (c != '.' && (c < '0' || c > '9')) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    if (mime::walk_parts(text).leaves.size() > mime::kMaxLeafParts) __builtin_trap();
    auto r = parse_dsn(text);
    if (!r) return 0;
    if (r->format.empty() || r->recipients.empty() || r->recipients.size() > kMaxDsnRecipients) __builtin_trap();
    for (const auto& rc : r->recipients) {
        if (rc.final_recipient.empty() && rc.original_recipient.empty()) __builtin_trap();
        if (!one_line(rc.final_recipient) || !one_line(rc.original_recipient) || !one_line(rc.action) ||
            !one_line(rc.diagnostic) || !one_line(rc.remote_mta))
            __builtin_trap();
        if (!status_shape(rc.status)) __builtin_trap();
        for (char c : rc.action)
            if (c >= 'A' && c <= 'Z') __builtin_trap();
    }
    // Any field lookup in the returned header section is safe.
    (void)header_field(r->original_message_headers, "message-id");
    return 0;
}
