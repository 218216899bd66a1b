// trace: the Received: line mxlane adds to every message it sends, and the hop count that stops a loop.
#include "qrunner/trace.hpp"

#include <strings.h>

#include "libshared/loop_token.hpp"
#include "qrunner/notify.hpp"

namespace mxlane::qrunner {

std::string received_line(std::string_view host, std::string_view id, std::int64_t now_ms) {
    std::string line = "Received: " + trace_prefix(host);
    line.append("id ").append(id).append(";\r\n\t").append(rfc5322_date(now_ms)).append("\r\n");
    return line;
}

int hop_count(std::string_view text) {
    int hops = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\n', at);
        std::string_view line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        if (line.empty() || line == "\r") break;  // end of the header section
        if (line.size() >= 9 && strncasecmp(line.data(), "received:", 9) == 0) ++hops;
        if (end == std::string_view::npos) break;
        at = end + 1;
    }
    return hops;
}

}  // namespace mxlane::qrunner
