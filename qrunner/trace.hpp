// trace: the Received: line mxlane adds to every message it sends, and the hop count that stops a loop.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mxlane::qrunner {

// More Received: header fields than this in a stored message: it is looping
// between hosts, and is bounced (5.4.6) instead of sent again (Postfix's
// hopcount_limit).
constexpr int kHopLimit = 50;

// "Received: by HOST (mxlane) id ID;\r\n\tDATE\r\n" (RFC 5321 4.4), in wire form.
std::string received_line(std::string_view host, std::string_view id, std::int64_t now_ms);

// The Received: header fields in the header section of a stored message.
int hop_count(std::string_view text);

}  // namespace mxlane::qrunner
