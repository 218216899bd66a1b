// trace: the Received: line mxlane adds to every message it sends, and the hop count that stops a loop.
#include "qrunner/trace.hpp"

#include "libshared/loop_token.hpp"
#include "libshared/dates.hpp"
#include "libshared/header_section.hpp"

namespace mxlane::qrunner {

std::string received_line(std::string_view host, std::string_view id, std::int64_t now_ms) {
    std::string line = "Received: " + trace_prefix(host);
    line.append("id ").append(id).append(";\r\n\t").append(rfc5322_date(now_ms)).append("\r\n");
    return line;
}

int hop_count(std::string_view text) {
    int hops = 0;
    for (const auto& f : parse_header_section(text))
        if (same_field_name(f.name, "Received")) ++hops;
    return hops;
}

}  // namespace mxlane::qrunner
