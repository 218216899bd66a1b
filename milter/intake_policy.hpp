// intake_policy: is this message a bulk job, and is that already known at this step?
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/network_list.hpp"

struct sockaddr;

namespace mxlane {
class Config;

namespace milter {

// The bulk_* parameters, with /path/file patterns read in.
struct IntakePolicy {
    std::string bulk_header;                  // empty: the header rule is off
    std::string pool_header;                  // names the source pool; empty: off
    std::size_t min_recipients = 0;           // 0: the count rule is off
    std::vector<std::string> sender_patterns; // user@dom, @dom, dom
    std::vector<std::string> sasl_patterns;   // the same forms, or a bare login
    NetworkList clients;                      // bulk_clients
    std::vector<std::string> job_key_headers; // after bulk_header, the fields that name a job
    std::int64_t job_idle_close_ms = 0;       // a keyed job takes more messages until idle this long

    // Throws ConfigError ("FILE: bulk_senders: cannot read /x: ...") when a
    // pattern file cannot be read (bulk_clients is checked by the parameter table).
    static IntakePolicy from_config(const Config& cfg);
};

// Expands a bulk_senders-style list: an entry starting with '/' names a file
// with one pattern a line ('#' comments and blank lines skipped).
std::vector<std::string> expand_patterns(const std::vector<std::string>& entries, const std::string& param);

bool sender_is_bulk(const IntakePolicy& p, std::string_view sender);
// A login matches a pattern equal to it, or (when it looks like an address)
// a pattern address_matches() accepts.
bool sasl_login_is_bulk(const IntakePolicy& p, std::string_view login);

// May this client's mail be bulk at all? A SASL-authenticated client may; any
// other only from a bulk_clients network. hostaddr is xxfi_connect's: NULL (or
// not IPv4/IPv6) for mail the MTA got locally (Postfix's sendmail command),
// which counts as 127.0.0.1.
bool client_may_send_bulk(const IntakePolicy& p, const sockaddr* hostaddr);

// The milter steps at which a decision can be made, in protocol order.
enum class Step { envfrom, data, eoh };

// What is known of the message so far.
struct IntakeFacts {
    bool bulk_sender = false;      // envelope sender matched bulk_senders
    bool bulk_login = false;       // {auth_authen} matched bulk_sasl_users
    std::size_t recipients = 0;    // RCPT TO seen so far
    bool bulk_header_seen = false; // the bulk_header field was present
};

enum class Verdict { bulk, ordinary, undecided };

// bulk as soon as one rule matches; ordinary as soon as no rule can still
// match at a later step (the recipient count is final at DATA, the header
// rule at end of headers); otherwise undecided.
Verdict decide(const IntakePolicy& p, const IntakeFacts& f, Step step);

// Is this header field the bulk header (names compare case-insensitively)?
bool is_bulk_header(const IntakePolicy& p, std::string_view name);
// The pool_header field (any case): removed at intake, its value names the source pool.
bool is_pool_header(const IntakePolicy& p, std::string_view name);

// The job name a bulk_header value gives: unfolded, trimmed. Empty: a job of its own.
std::string job_name_from_header(std::string_view value);

// The header fields of a message that can name its job, first value of each.
struct JobKeyFields {
    std::optional<std::string> bulk_header;                // "" present but empty: a job of its own
    std::vector<std::optional<std::string>> key_headers;  // one per job_key_headers entry
    std::optional<std::string> subject;

    // Notes a field of the message (the MTA's order; the first of each name counts).
    void note(const IntakePolicy& p, std::string_view name, std::string_view value);
};

// Which rule named the job.
enum class KeyedBy { none, bulk_header, key_header, sender_subject };

struct JobKey {
    std::string name;  // empty: a job of its own
    KeyedBy by = KeyedBy::none;
};

// bulk_header's value; else the first job_key_headers entry (in the list's order)
// the message carries with a value; else its Subject: (the caller scopes that
// by envelope sender). A message without a Subject: is keyed by "(no subject)".
JobKey job_key(const JobKeyFields& f);

}  // namespace milter
}  // namespace mxlane
