// work: the loop-prevention header added to the wire text of a message sent to the relay.
#include "libshared/loop_token.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

std::shared_ptr<const std::string> MessageData::relay_wire(const std::string& wire,
                                                          const std::string& queue_directory,
                                                          std::int64_t now) const {
    std::string token = loop_token_make_at(queue_directory, job_token, meta.id, now);
    auto text = std::make_shared<std::string>();
    text->reserve(wire.size() + token.size() + 32);
    text->append(kLoopHeader).append(": ").append(token).append("\r\n").append(wire);
    return text;
}

}  // namespace mxlane::qrunner
