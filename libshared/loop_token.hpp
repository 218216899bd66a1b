// loop_token: the X-Mxlane-Relayed header value that keeps relayed mail from being captured again.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mxlane {

// The header the qrunner adds when it hands a message back to an MTA.
constexpr const char* kLoopHeader = "X-Mxlane-Relayed";

// The secret (queue_directory/loop.key) cannot be read or created.
class LoopKeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// mxlane's Received: field on every message it sends: "by HOST (mxlane) id ...;
// DATE". A message that carries it with this host's name was sent by this
// host's mxlane already: the milter never captures it again.
std::string trace_prefix(std::string_view host);  // "by HOST (mxlane) "
bool is_own_trace(std::string_view received_value, std::string_view host);

// The 32-byte secret in queue_directory/loop.key, created (mode 0600) by the
// first program that needs it; concurrent creators agree on one key. Cached
// per directory, and read again when the file is replaced or deleted (then
// made anew), so that every program follows the key on disk. Throws LoopKeyError.
std::string loop_key(const std::string& queue_directory);

// "<job id>.<message id>.<unix time>.<hex HMAC-SHA256 of the part before it>".
std::string loop_token_make(const std::string& queue_directory, std::string_view job_id,
                            std::uint64_t message_id);

// True when the token was made with this queue's secret no more than
// max_age_seconds ago (and not from the future, beyond a little clock skew).
// A malformed or forged token is simply false; a secret that cannot be read
// throws LoopKeyError, so that the caller fails safe instead of capturing again.
bool loop_token_valid(const std::string& queue_directory, std::string_view token,
                      std::int64_t max_age_seconds);

// The same check at a given time (for tests).
bool loop_token_valid_at(const std::string& queue_directory, std::string_view token,
                         std::int64_t max_age_seconds, std::int64_t now);
std::string loop_token_make_at(const std::string& queue_directory, std::string_view job_id,
                               std::uint64_t message_id, std::int64_t now);

}  // namespace mxlane
