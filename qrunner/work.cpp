// work: the loop-prevention header added to the wire text of a message sent to the relay.
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

std::shared_ptr<const std::string> MessageData::relay_wire(const std::string& wire, const Work& work,
                                                          const std::string& queue_directory,
                                                          std::int64_t now) const {
    LoopBinding binding{meta.sender, {}, wire_body_digest(wire)};
    for (const auto& r : work.rcpts) binding.recipients.push_back(r.address);
    std::string token = loop_token_make_at(queue_directory, job_token, meta.id, now, binding);
    auto text = std::make_shared<std::string>();
    text->reserve(wire.size() + token.size() + 32);
    text->append(kLoopHeader).append(": ").append(token).append("\r\n").append(wire);
    return text;
}

}  // namespace mxlane::qrunner
