// loop_token: the X-Mxlane-Relayed header value that keeps relayed mail from being captured again.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

// HMAC-SHA256 of text under key: the 32 raw bytes (every token mxlane makes
// with the loop key goes through this one function). Throws LoopKeyError.
std::string hmac_sha256(const std::string& key, std::string_view text);
// The same in lower-case hex (64 characters).
std::string hmac_hex(const std::string& key, std::string_view text);

// What a token is bound to: the transaction that carries it. A token copied
// into other mail (another sender, other recipients, another body) is not valid
// there.
struct LoopBinding {
    std::string sender;                   // envelope sender, without <>
    std::vector<std::string> recipients;  // envelope recipients, without <>, any order
    std::string body_digest;              // BodyDigest::hex() of the message body
};

// SHA-256 of a message body over every byte except white space (SP, HTAB, CR,
// LF): line-end conversion and re-wrapping of long lines on the way through an
// MTA do not change it; dot-stuffing must be undone before (the bytes are the
// body as the MTA stores it). Fed in chunks as the body streams past.
class BodyDigest {
public:
    BodyDigest();
    ~BodyDigest();
    BodyDigest(const BodyDigest&) = delete;
    BodyDigest& operator=(const BodyDigest&) = delete;
    void add(std::string_view chunk);
    std::string hex();  // lower-case hex; ends the digest
private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The text the HMAC covers after the token's own fields:
// "\n" SENDER ("\n" RCPT)... "\n" DIGEST, addresses lower-cased and the
// recipients sorted, so that the milter, which sees them one by one, gets the same.
std::string loop_binding_text(const LoopBinding& b);

// "<job id>.<message id>.<unix time>.<hex HMAC-SHA256>": the HMAC covers
// "<job id>.<message id>.<unix time>" followed by loop_binding_text(binding).
std::string loop_token_make(const std::string& queue_directory, std::string_view job_id,
                            std::uint64_t message_id, const LoopBinding& binding);

// True when the token was made with this queue's secret no more than
// max_age_seconds ago (and not from the future, beyond a little clock skew),
// for this binding. A malformed, forged or replayed token is simply false; a
// secret that cannot be read throws LoopKeyError, so that the caller fails safe
// instead of capturing again.
bool loop_token_valid(const std::string& queue_directory, std::string_view token,
                      std::int64_t max_age_seconds, const LoopBinding& binding);

// The same at a given time (for tests).
bool loop_token_valid_at(const std::string& queue_directory, std::string_view token,
                         std::int64_t max_age_seconds, std::int64_t now, const LoopBinding& binding);
std::string loop_token_make_at(const std::string& queue_directory, std::string_view job_id,
                               std::uint64_t message_id, std::int64_t now, const LoopBinding& binding);

}  // namespace mxlane
