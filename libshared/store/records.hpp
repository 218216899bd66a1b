// records: jobs, messages and recipients as stored, with their versioned encodings.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::store {

enum class RcptState : std::uint8_t {
    queued = 0,   // never tried
    deferred,     // failed temporarily, will retry
    delivered,
    bounced,      // failed permanently
    expired,      // max_queue_lifetime ran out
    relayed,      // handed to the relay, which now owns it
    suppressed,   // on the suppression list, never sent
    held,         // its job is on hold
};
constexpr std::size_t kStateCount = 8;
std::string_view state_name(RcptState s);
std::optional<RcptState> parse_state(std::string_view name);
// queued and deferred recipients wait in the due index; every other state is final or parked.
inline bool is_pending(RcptState s) { return s == RcptState::queued || s == RcptState::deferred; }
inline bool is_final(RcptState s) { return !is_pending(s) && s != RcptState::held; }

enum class JobState : std::uint8_t { active = 0, held, done, incoming };
std::string_view job_state_name(JobState s);

// "J" + upper-case hex, at least 6 digits: one token, no ':' (log lines need that).
std::string format_job_id(std::uint64_t id);
std::optional<std::uint64_t> parse_job_id(std::string_view text);

struct Job {
    std::uint64_t id = 0;
    std::string name;      // bulk_header value or submit --name; may be empty
    std::string sender;    // envelope sender of the first message
    std::int64_t created = 0;  // ms since the epoch
    JobState state = JobState::active;
    bool notified = false;  // the sender's summary has been sent
    std::string hold_reason;  // why the qrunner held it ("" for mxlanectl hold, or when not held)
    // A keyed job (job_idle_close) stays open for more messages until this long passes
    // without one (0: open until done). Only a closed job can be done.
    std::int64_t open_ms = 0;
    bool closed = false;
    // Derived when read (summed over the job's messages), not stored in the job record,
    // so that messages joining a job never write-lock it.
    std::uint64_t messages = 0;
    std::array<std::uint64_t, kStateCount> counts{};  // recipients by state

    std::uint64_t pending() const;  // queued + deferred + held
    std::uint64_t total() const;
    std::string encode() const;
    static Job decode(std::uint64_t id, std::string_view data);
};

struct Message {
    std::uint64_t job_id = 0;
    std::uint64_t id = 0;
    std::string sender;          // envelope sender ("" for the null sender)
    std::string host_queue_id;   // the host MTA's queue id ({i}), for the intake log
    std::string mail_params;     // ESMTP parameters from MAIL FROM worth keeping (e.g. SMTPUTF8)
    std::vector<std::string> field_names;  // personalisation columns after the address
    bool personalised = false;   // text has {{column}} placeholders
    bool eight_bit = false;
    bool smtputf8 = false;
    std::uint64_t size = 0;      // bytes of text
    std::uint32_t chunks = 0;    // body chunks in bodies.db
    std::int64_t created = 0;    // ms
    std::string pool;            // source pool named at intake (pool_header, submit --pool); "": none

    std::string encode() const;
    static Message decode(std::uint64_t job_id, std::uint64_t id, std::string_view data);
};

// Per-message counters (counts.db): the next recipient index and recipients by state.
struct MessageCounts {
    std::uint64_t next_index = 0;
    std::array<std::uint64_t, kStateCount> counts{};
    std::string encode() const;
    static MessageCounts decode(std::string_view data);
};

// A recipient's sequence number within its job: message id in the high bits, the
// recipient's index within the message in the low 24, so a job's recipients list in
// message order and no counter is shared between concurrent intakes.
constexpr int kIndexBits = 24;
constexpr std::uint64_t kMaxRecipientsPerMessage = (1ULL << kIndexBits) - 1;
inline std::uint64_t make_seq(std::uint64_t msg_id, std::uint64_t index) { return (msg_id << kIndexBits) | index; }

struct Recipient {
    std::uint64_t job_id = 0;
    std::uint64_t seq = 0;        // make_seq(message_id, index)
    std::uint64_t message_id = 0;
    std::string address;
    std::vector<std::string> fields;  // personalisation values, in field_names order
    RcptState state = RcptState::queued;
    std::uint32_t attempts = 0;
    std::int64_t next_attempt = 0;  // ms; the due index key for pending recipients
    std::int64_t queued_at = 0;     // ms
    std::int64_t last_attempt = 0;  // ms, 0: never
    int reply_code = 0;
    std::string dsn;          // enhanced status code of the last reply
    std::string reply_text;   // last reply, "550 5.1.1 no such user"
    std::string host;         // "mx1.example.com[192.0.2.7]:25" that gave it
    std::string path;         // "direct" or "relay" for the last attempt

    std::string key() const;  // job_id + seq, big-endian
    std::string encode() const;
    static Recipient decode(std::string_view key, std::string_view data);
    // The due index key straight from an encoded record: next_attempt + job + seq,
    // or nothing when the recipient is not pending.
    static std::optional<std::string> due_key(std::string_view key, std::string_view data);
};

// The class of a recipient's last failed attempt ("invalid-recipient", ... see
// bounce_class), or "" when it has none (never tried, sent, suppressed unsent).
std::string_view failure_class(const Recipient& r);

// The reasons an address is on the suppression list for.
inline constexpr std::array<std::string_view, 4> kSuppressionReasons = {"bounce", "complaint", "unsubscribed", "manual"};

// An entry of the suppression list (suppressed.db: address -> record).
struct Suppression {
    std::string address, reason;  // reason: bounce, complaint, unsubscribed, manual (older entries: free text)
    std::int64_t added = 0;       // ms
    std::uint64_t job = 0;        // the job it came from; 0: none known
    std::string encode() const;   // the record, without the address (the key)
    static Suppression decode(std::string_view address, std::string_view data);
};

std::string job_key(std::uint64_t job_id);
std::string message_key(std::uint64_t job_id, std::uint64_t msg_id);
std::string recipient_key(std::uint64_t job_id, std::uint64_t seq);
std::string body_key(std::uint64_t msg_id, std::uint32_t chunk);

}  // namespace mxlane::store
