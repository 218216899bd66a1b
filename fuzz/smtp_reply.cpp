// fuzz target smtp_reply: whatever a server sends, in whatever pieces, gives replies or "malformed", never more.
#include "fuzz/fuzz_input.hpp"
#include "libshared/smtp_reply.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte picks the piece size, so replies split across reads are covered.
    std::size_t piece = 1 + data[0] % 64;
    std::string_view in = fuzz::as_text(data + 1, size - 1);
    ReplyParser parser;
    bool failed = false;
    for (std::size_t at = 0; at < in.size(); at += piece) {
        parser.feed(in.substr(at, piece));
        for (;;) {
            Reply r;
            ReplyParser::Status s = parser.next(r);
            if (s == ReplyParser::Status::incomplete) break;
            if (s == ReplyParser::Status::malformed) {
                if (parser.error().empty()) __builtin_trap();  // a failure always says why
                failed = true;
                break;
            }
            if (failed) __builtin_trap();  // a failed parser stays failed
            if (r.code < 200 || r.code > 599 || r.lines.empty()) __builtin_trap();
            if (r.text.size() > ReplyParser::max_reply) __builtin_trap();
            (void)r.dsn();
            (void)r.str();
            (void)enhanced_code_prefix(r.text, r.code);
        }
        if (parser.buffered() > ReplyParser::max_reply + ReplyParser::max_line + piece) __builtin_trap();
    }
    (void)enhanced_code_prefix(in, 550);
    return 0;
}
