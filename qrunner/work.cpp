// work: the loop-prevention header added to the wire text of a message sent to the relay.
#include "libshared/loop_token.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

std::shared_ptr<const std::string> MessageData::relay_wire(const std::string& queue_directory) const {
    std::lock_guard lock(mu_);
    if (!relay_wire_) {
        std::string token = loop_token_make(queue_directory, job_token, meta.id);
        auto text = std::make_shared<std::string>(std::string(kLoopHeader) + ": " + token + "\r\n");
        if (wire) text->append(*wire);
        relay_wire_ = text;
    }
    return relay_wire_;
}

}  // namespace mxlane::qrunner
