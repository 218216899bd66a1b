// work: what delivery is handed (one transaction's recipients of one message) and the message data it carries.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/render_plan.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::qrunner {

using Clock = std::chrono::steady_clock;


// One stored message ready for the wire: loaded once, shared by every
// transaction that sends it.
struct MessageData {
    store::Message meta;
    std::string job_token;   // "J00002A": the id in log lines
    std::string text;        // as stored (templates are rendered from this)
    std::shared_ptr<const std::string> wire;  // CRLF + dot-stuffed, our Received: line first; null when personalised
    std::shared_ptr<const mime::RenderPlan> plan;  // personalised: `text` parsed once, rendered per recipient
    std::string received;    // our Received: line, wire form (it starts a personalised one's wire too)
    int hops = 0;            // Received: lines in the stored message
    bool eight_bit = false;
    // DKIM (dkim_key_table): `wire` is signed when the message is not personalised.
    bool dkim_hold = false;   // no key for its From: domain and dkim_missing_key = hold
    bool pool_hold = false;   // its pool is not in source_pools: its job is held
    std::string sign_error;   // the signing library failed: its recipients are deferred

    // The loop-prevention header field (wire form) that goes before `wire` (this
    // message's wire text as it goes out) to the relay. The token is made anew
    // for every transaction (at `now`, unix seconds), bound to the sender, the
    // recipients the relay accepted and the body: a job that relays for longer
    // than the token's lifetime must not send stale ones, and a token copied
    // into other mail is worth nothing.
    // `sender` is the envelope sender the transaction goes with (VERP changes it).
    std::string relay_field(const std::string& sender, const std::vector<std::string>& accepted,
                            const std::string& wire, const std::string& queue_directory, std::int64_t now) const;
};

// BodyDigest of the body of a wire text (CRLF, dot-stuffed): the body as the
// receiving MTA stores it and shows a milter, stuffing undone.
std::string wire_body_digest(std::string_view wire);

// Which way a recipient goes on this attempt.
enum class Path { direct, relay };

// Recipients of one message for one destination, sent in one MAIL transaction.
struct Work {
    std::shared_ptr<const MessageData> message;
    std::vector<store::Recipient> rcpts;
    std::string domain;          // recipient domain (direct) or the relay label
    Path path = Path::direct;
    Clock::time_point claimed;   // when the scheduler took the recipients
    std::int64_t claimed_ms = 0; // same, wall clock (for delays=a/...)
};

}  // namespace mxlane::qrunner
