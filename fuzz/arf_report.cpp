// fuzz target arf_report: any message is read as a feedback report or refused, never with a crash, and what is read is well formed.
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "libshared/delivery_report.hpp"

using namespace mxlane;

namespace {

bool one_line(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    auto r = parse_arf(text);
    if (!r) return 0;
    if (r->feedback_type.empty() || r->feedback_type.find_first_of(" \t") != std::string::npos) __builtin_trap();
    for (char c : r->feedback_type)
        if (c >= 'A' && c <= 'Z') __builtin_trap();
    for (const std::string* f : {&r->feedback_type, &r->user_agent, &r->version, &r->original_rcpt_to,
                                 &r->original_mail_from, &r->reported_domain, &r->source_ip, &r->arrival_date})
        if (!one_line(*f)) __builtin_trap();
    // Unfolded: no line end survives (a lone CR inside a line is the sender's own byte).
    for (const char* name : {"Return-Path", "List-Unsubscribe", "X-Mxlane-Job"})
        if (header_field(r->original_headers, name).find('\n') != std::string::npos) __builtin_trap();
    return 0;
}
