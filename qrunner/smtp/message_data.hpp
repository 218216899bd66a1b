// message_data: stored message text -> SMTP wire form (CRLF line ends, dot-stuffing).
#pragma once
#include <string>
#include <string_view>

namespace mxlane::smtp {

struct WireMessage {
    std::string text;         // CRLF line ends, dot-stuffed, ends in CRLF; no terminating "."
    bool eight_bit = false;   // some byte >= 0x80: wants BODY=8BITMIME (RFC 6152)
};

// Line ends may be LF, CRLF or a bare CR; each becomes CRLF (RFC 5321 2.3.8
// forbids a bare CR or LF on the wire). A line starting with "." gets a second
// "." (RFC 5321 4.5.2). An empty input stays empty (the session still sends
// the terminating ".").
WireMessage to_wire(std::string_view stored);

// True when any byte is >= 0x80.
bool has_eight_bit(std::string_view text);

}  // namespace mxlane::smtp
