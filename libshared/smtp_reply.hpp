// smtp_reply: SMTP reply and enhanced status code parsing, temporary/permanent class.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// One complete SMTP reply (RFC 5321 4.2), possibly several lines.
struct Reply {
    int code = 0;              // 250, 451, 550, ...; 0: no reply (nothing was sent)
    std::string enhanced;      // "5.1.1" (RFC 3463), or empty
    std::string text;          // all lines joined with a space, without code or enhanced code
    std::vector<std::string> lines;  // each line after "DDD-" / "DDD ", as received
    bool synthetic = false;    // made by mxlane (timeout, lost connection, policy), not said by a server

    bool positive() const { return code >= 200 && code < 400; }
    bool temporary() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500 && code < 600; }
    // The enhanced code; else `fallback` when given; else "2.0.0"/"4.0.0"/"5.0.0" by class.
    std::string dsn(std::string_view fallback = {}) const;
    // "550 5.1.1 text" (the parts that are present).
    std::string str() const;

    // A reply made by mxlane itself (synthetic = true), e.g. make(451, "4.4.2", "lost connection ...").
    static Reply make(int code, std::string enhanced, std::string text);
};

// Returns "X.Y.Z" when `text` starts with an enhanced status code whose class
// digit matches `code` (RFC 2034 3: the class must agree with the reply code),
// followed by white space or the end; else empty.
std::string enhanced_code_prefix(std::string_view text, int code);

// Incremental reply parser: feed raw bytes as they arrive, take complete replies out.
// Lines end in CRLF (a bare LF is tolerated). Anything malformed (a line that
// does not start with three digits 2xx-5xx and ' ', '-' or the end, a
// continuation line with another code, a line over max_line bytes, a reply
// over max_reply bytes) puts the parser in a failed state for good.
class ReplyParser {
public:
    static constexpr std::size_t max_line = 8 * 1024;
    static constexpr std::size_t max_reply = 64 * 1024;

    enum class Status { incomplete, complete, malformed };

    void feed(std::string_view bytes);
    // complete: `out` holds the next reply; incomplete: feed more bytes;
    // malformed: error() says why (and every later call says malformed too).
    Status next(Reply& out);

    const std::string& error() const { return error_; }
    // Bytes fed but not yet part of a returned reply.
    std::size_t buffered() const { return buf_.size() - pos_; }
    // Forget everything buffered (after STARTTLS, RFC 3207 4.2) and any failure.
    void reset();

private:
    Status fail(std::string why);
    void compact();

    std::string buf_;
    std::size_t pos_ = 0;      // start of the first unconsumed line
    Reply partial_;            // lines of the reply being assembled
    std::size_t partial_bytes_ = 0;
    std::string error_;
};

}  // namespace mxlane
