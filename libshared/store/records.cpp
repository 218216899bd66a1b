// records: jobs, messages and recipients as stored, with their versioned encodings.
#include "libshared/store/records.hpp"

#include <cstdio>

#include "libshared/bounce_class.hpp"
#include "libshared/store/codec.hpp"

namespace mxlane::store {
namespace {

constexpr std::array<std::string_view, kStateCount> kStateNames = {
    "queued", "deferred", "delivered", "bounced", "expired", "relayed", "suppressed", "held"};

// Record versions: bump when a layout changes and keep decoding the old one.
constexpr std::uint8_t kJobV1 = 1, kMessageV1 = 1, kRecipientV1 = 1;

void expect_version(std::uint8_t got, std::uint8_t want, const char* what) {
    if (got != want)
        throw CodecError(std::string(what) + " record of unknown version " + std::to_string(got));
}

}  // namespace

std::string_view state_name(RcptState s) { return kStateNames[static_cast<std::size_t>(s)]; }

std::optional<RcptState> parse_state(std::string_view name) {
    for (std::size_t i = 0; i < kStateCount; ++i)
        if (kStateNames[i] == name) return static_cast<RcptState>(i);
    return std::nullopt;
}

std::string_view job_state_name(JobState s) {
    switch (s) {
        case JobState::active: return "active";
        case JobState::held: return "held";
        case JobState::done: return "done";
        case JobState::incoming: return "incoming";
    }
    return "unknown";
}

std::string format_job_id(std::uint64_t id) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "J%06llX", static_cast<unsigned long long>(id));
    return buf;
}

std::optional<std::uint64_t> parse_job_id(std::string_view text) {
    if (text.size() < 2 || (text[0] != 'J' && text[0] != 'j') || text.size() > 17) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : text.substr(1)) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    if (v == 0) return std::nullopt;
    return v;
}

std::string job_key(std::uint64_t job_id) {
    std::string k;
    put_u64(k, job_id);
    return k;
}

std::string message_key(std::uint64_t job_id, std::uint64_t msg_id) {
    std::string k = job_key(job_id);
    put_u64(k, msg_id);
    return k;
}

std::string recipient_key(std::uint64_t job_id, std::uint64_t seq) { return message_key(job_id, seq); }

std::string body_key(std::uint64_t msg_id, std::uint32_t chunk) {
    std::string k;
    put_u64(k, msg_id);
    put_u32(k, chunk);
    return k;
}

std::uint64_t Job::pending() const {
    return counts[static_cast<int>(RcptState::queued)] + counts[static_cast<int>(RcptState::deferred)] +
           counts[static_cast<int>(RcptState::held)];
}

std::uint64_t Job::total() const {
    std::uint64_t n = 0;
    for (auto c : counts) n += c;
    return n;
}

std::string Job::encode() const {
    Encoder e;
    e.u8(kJobV1).str(name).str(sender).i64(created).u8(static_cast<std::uint8_t>(state));
    e.u8(notified ? 1 : 0);
    // Added after the first release: a record without them reads as "", 0, not closed.
    if (!hold_reason.empty() || open_ms) e.str(hold_reason);
    if (open_ms) e.i64(open_ms).u8(closed ? 1 : 0);
    return e.take();
}

Job Job::decode(std::uint64_t id, std::string_view data) {
    Decoder d(data);
    expect_version(d.u8(), kJobV1, "job");
    Job j;
    j.id = id;
    j.name = d.str();
    j.sender = d.str();
    j.created = d.i64();
    std::uint8_t state = d.u8();
    if (state > static_cast<std::uint8_t>(JobState::incoming))
        throw CodecError("job record with unknown state " + std::to_string(state));
    j.state = static_cast<JobState>(state);
    j.notified = d.u8() != 0;
    if (!d.done()) j.hold_reason = d.str();
    if (!d.done()) {
        j.open_ms = d.i64();
        j.closed = d.u8() != 0;
    }
    return j;
}

std::string MessageCounts::encode() const {
    Encoder e;
    e.u64(next_index).u32(kStateCount);
    for (auto c : counts) e.u64(c);
    return e.take();
}

MessageCounts MessageCounts::decode(std::string_view data) {
    Decoder d(data);
    MessageCounts mc;
    mc.next_index = d.u64();
    std::uint32_t n = d.u32();
    for (std::uint32_t i = 0; i < n; ++i) {
        auto c = d.u64();
        if (i < kStateCount) mc.counts[i] = c;
    }
    return mc;
}

std::string Message::encode() const {
    Encoder e;
    e.u8(kMessageV1).str(sender).str(host_queue_id).str(mail_params).strs(field_names);
    e.u8(static_cast<std::uint8_t>((personalised ? 1 : 0) | (eight_bit ? 2 : 0) | (smtputf8 ? 4 : 0)));
    e.u64(size).u32(chunks).i64(created);
    // Added after the first release: a record without it reads as "" (no pool named).
    if (!pool.empty()) e.str(pool);
    return e.take();
}

Message Message::decode(std::uint64_t job_id, std::uint64_t id, std::string_view data) {
    Decoder d(data);
    expect_version(d.u8(), kMessageV1, "message");
    Message m;
    m.job_id = job_id;
    m.id = id;
    m.sender = d.str();
    m.host_queue_id = d.str();
    m.mail_params = d.str();
    m.field_names = d.strs();
    auto flags = d.u8();
    m.personalised = flags & 1;
    m.eight_bit = flags & 2;
    m.smtputf8 = flags & 4;
    m.size = d.u64();
    m.chunks = d.u32();
    m.created = d.i64();
    if (!d.done()) m.pool = d.str();
    return m;
}

std::string Recipient::key() const { return recipient_key(job_id, seq); }

// Layout: version, state, next_attempt first, so due_key() reads them without a full decode.
std::string Recipient::encode() const {
    Encoder e;
    e.u8(kRecipientV1).u8(static_cast<std::uint8_t>(state)).i64(next_attempt);
    e.u64(message_id).str(address).strs(fields).u32(attempts).i64(queued_at).i64(last_attempt);
    e.u32(static_cast<std::uint32_t>(reply_code)).str(dsn).str(reply_text).str(host).str(path);
    return e.take();
}

Recipient Recipient::decode(std::string_view key, std::string_view data) {
    Decoder d(data);
    expect_version(d.u8(), kRecipientV1, "recipient");
    Recipient r;
    r.job_id = get_u64(key, 0);
    r.seq = get_u64(key, 8);
    std::uint8_t state = d.u8();
    if (state >= kStateCount) throw CodecError("recipient record with unknown state " + std::to_string(state));
    r.state = static_cast<RcptState>(state);
    r.next_attempt = d.i64();
    r.message_id = d.u64();
    r.address = d.str();
    r.fields = d.strs();
    r.attempts = d.u32();
    r.queued_at = d.i64();
    r.last_attempt = d.i64();
    r.reply_code = static_cast<int>(d.u32());
    r.dsn = d.str();
    r.reply_text = d.str();
    r.host = d.str();
    r.path = d.str();
    return r;
}

std::string Suppression::encode() const {
    Encoder e;
    e.i64(added).str(reason);
    // Added after the first release: a record without it reads as no job.
    if (job) e.u64(job);
    return e.take();
}

Suppression Suppression::decode(std::string_view address, std::string_view data) {
    Decoder d(data);
    Suppression s;
    s.address = std::string(address);
    s.added = d.i64();
    s.reason = d.str();
    if (!d.done()) s.job = d.u64();
    return s;
}

std::string_view failure_class(const Recipient& r) {
    if (r.state == RcptState::delivered || r.state == RcptState::relayed) return {};
    return class_name(classify_reply(r.reply_code, r.dsn, r.reply_text));
}

std::optional<std::string> Recipient::due_key(std::string_view key, std::string_view data) {
    if (data.size() < 10 || key.size() != 16) return std::nullopt;
    auto state = static_cast<RcptState>(static_cast<unsigned char>(data[1]));
    if (!is_pending(state)) return std::nullopt;
    std::string k(data.substr(2, 8));  // next_attempt, big-endian
    k.append(key);
    return k;
}

}  // namespace mxlane::store
