// notify: reports to senders: a summary when a job finishes, or an RFC 3464 DSN per failed recipient.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "libshared/store/queue_store.hpp"
#include "qrunner/settings.hpp"

namespace mxlane::qrunner {

// A notification is stored as a message of its own, in a job named
// kNotifyJobPrefix + the original job's id, with the null envelope sender
// (RFC 5321 4.5.5: nothing ever answers it) and the original sender as its one
// recipient. Its host_queue_id (otherwise the host MTA's queue id, which never
// holds ':') says what it reports, "mxlane-notify:summary:<recipients>" or
// "mxlane-notify:dsn:<seq>": that key makes storing it idempotent, and it
// marks the message for the relay in every delivery_mode.
inline constexpr std::string_view kNotifyJobPrefix = "mxlane-notify:";

// A message mxlane made to report on another: it goes through the relay and is
// never reported on itself.
bool is_notification(const store::Message& m);

// ---- the texts (no store, no clock: tested on their own)

// What the summary of one job reports.
struct JobReport {
    std::string hostname;   // myhostname: the MAILER-DAEMON address and Reporting-MTA
    std::string job_token;  // "J00002A"
    std::string job_name;
    std::string sender;     // the job's sender, the report's recipient
    std::int64_t created = 0, finished = 0;  // ms since the epoch
    std::array<std::uint64_t, store::kStateCount> counts{};
    std::vector<store::Recipient> failed;  // bounced, expired and suppressed, at most kMaxListed
    bool truncated = false;                // there were more than kMaxListed
    std::map<std::string, std::uint64_t> suppressions;  // addresses the job put on the suppression list, by reason
};
inline constexpr std::size_t kMaxListed = 100000;

// multipart/mixed: a text part with the counts and the first failures, and
// the failed recipients as a CSV attachment (address,state,dsn,reply,host,attempts,last_attempt).
std::string render_summary(const JobReport& r, std::int64_t now);

// What one delivery status notification reports.
struct FailureReport {
    std::string hostname;
    std::string job_token;
    std::string sender;            // the message's envelope sender, the DSN's recipient
    std::int64_t arrival = 0;      // when the message was queued (ms)
    std::string original_headers; // the message's header section, as stored
    store::Recipient rcpt;         // bounced or expired
};

// RFC 3464: multipart/report; report-type=delivery-status with a text part,
// a message/delivery-status part (Reporting-MTA, Arrival-Date, and for the
// recipient Final-Recipient, Action: failed, Status, Remote-MTA,
// Diagnostic-Code, Last-Attempt-Date) and the original headers as text/rfc822-headers.
std::string render_dsn(const FailureReport& r, std::int64_t now);

// ---- storing them

// Stores notifications in the queue. failed() may be called from any thread;
// everything else runs on the store thread.
class Notifier {
public:
    explicit Notifier(store::QueueStore& store) : store_(store) {}

    // A recipient is being recorded as bounced or expired; its result may not be
    // committed yet (notify_sender = each).
    void failed(std::uint64_t job_id, std::uint64_t seq);

    // After a commit: a DSN for each noted failure that is now committed, then
    // for each finished job whatever its report still lacks (the summary, or a
    // DSN missed because the process died between a result and its DSN), and
    // the job marked notified. `due`: when the notifications become due.
    void after_commit(const Settings& s, const std::vector<std::uint64_t>& finished, std::int64_t due);

    // At start: jobs that finished without being marked notified (the process
    // died in between) get their reports now.
    void sweep(const Settings& s, std::int64_t due);

private:
    void finish_job(const Settings& s, std::uint64_t job_id, std::int64_t due);
    void summarise(const Settings& s, const store::Job& job, std::int64_t due);
    // Stores the DSN for a failed recipient unless `done` says it exists; false: not reportable.
    bool report_failure(const Settings& s, const store::Recipient& r, std::int64_t due);
    std::set<std::string> stored_keys(std::uint64_t job_id);
    void store_notification(std::uint64_t job_id, const std::string& key, const std::string& to,
                            const std::string& text, std::int64_t due);
    struct MessageFacts {
        bool reportable = false;  // not null-sender, not itself a notification
        std::string sender;
        std::int64_t created = 0;
        bool personalised = false;
        std::vector<std::string> field_names;
        std::string headers;  // as stored; placeholders are rendered per recipient
    };
    const MessageFacts& message_facts(std::uint64_t job_id, std::uint64_t msg_id);

    store::QueueStore& store_;
    std::mutex mu_;  // guards noted_
    std::vector<std::pair<std::uint64_t, std::uint64_t>> noted_;
    std::map<std::pair<std::uint64_t, std::uint64_t>, int> waiting_;  // store thread: noted, result not committed yet
    std::map<std::uint64_t, MessageFacts> messages_;                  // store thread: a small cache
};

}  // namespace mxlane::qrunner
