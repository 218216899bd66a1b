// message_data: stored message text -> SMTP wire form (CRLF line ends, dot-stuffing).
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::smtp {

bool has_eight_bit(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
}

WireMessage to_wire(std::string_view stored) {
    WireMessage out;
    out.text.reserve(stored.size() + stored.size() / 32 + 2);
    bool line_start = true;
    for (std::size_t i = 0; i < stored.size(); ++i) {
        char c = stored[i];
        if (c == '\r' || c == '\n') {
            // CRLF, LF and a bare CR all end one line.
            if (c == '\r' && i + 1 < stored.size() && stored[i + 1] == '\n') ++i;
            out.text += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') out.text += '.';
        if (static_cast<unsigned char>(c) >= 0x80) out.eight_bit = true;
        out.text += c;
        line_start = false;
    }
    if (!line_start) out.text += "\r\n";
    return out;
}

}  // namespace mxlane::smtp
