// work: the loop-prevention header put before a message sent to the relay.
#include "libshared/loop_token.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

std::string wire_body_digest(std::string_view wire) {
    BodyDigest digest;
    auto end_of_headers = wire.find("\r\n\r\n");
    if (end_of_headers == std::string_view::npos) return digest.hex();
    std::string_view body = wire.substr(end_of_headers + 4);
    // Line by line, without the "." that dot-stuffing put before a leading ".".
    while (!body.empty()) {
        auto eol = body.find("\r\n");
        std::string_view line = body.substr(0, eol == std::string_view::npos ? body.size() : eol + 2);
        if (line.front() == '.') line.remove_prefix(1);
        digest.add(line);
        body.remove_prefix(eol == std::string_view::npos ? body.size() : eol + 2);
    }
    return digest.hex();
}

std::string MessageData::relay_field(const std::string& sender, const std::vector<std::string>& accepted,
                                     const std::string& wire, const std::string& queue_directory,
                                     std::int64_t now) const {
    const LoopBinding binding{sender, accepted, wire_body_digest(wire)};
    return std::string(kLoopHeader) + ": " + loop_token_make_at(queue_directory, job_token, meta.id, now, binding) +
           "\r\n";
}

}  // namespace mxlane::qrunner
