// queue_store: the queue's operations: intake, due scan and claim, results, admin, suppression, suspensions.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <istream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/store/environment.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::store {

std::int64_t now_ms();

// A recipient to add: address plus personalisation values (in field_names order).
struct NewRecipient {
    std::string address;
    std::vector<std::string> fields;
};

// One message and its recipients, committed in one transaction.
struct Intake {
    std::string job_name;        // joins the job with this name; empty: a job of its own
    std::string job_owner;       // scopes job_name (the milter: sender or SASL login); "" for none
    // > 0: a keyed job (the milter's job_idle_close): joins the job named so while it has
    // had a message within this many ms, else starts the next one, "NAME #2", "#3"...
    std::int64_t open_ms = 0;
    std::string sender;
    std::string host_queue_id;
    std::string mail_params;
    std::string pool;            // source pool (pool_header, submit --pool); "": default_pool
    std::vector<std::string> field_names;
    bool personalised = false;
    bool eight_bit = false;
    bool smtputf8 = false;
    JobState job_state = JobState::active;  // incoming: recipients follow in add_recipients()
    std::vector<NewRecipient> recipients;
    // The intakes the caller has under way at this moment, this one among them (the
    // milter: messages being received): from kGatherFrom on, add_message gathers the
    // ones that arrive meanwhile into one commit and flush (queue_store_intake.cpp).
    unsigned concurrent = 0;
};

struct IntakeResult {
    std::uint64_t job_id = 0;
    std::uint64_t message_id = 0;
    std::size_t recipients = 0;
    bool new_job = false;
};

// What the scheduler takes from the due index.
struct Claim {
    std::size_t scanned = 0;           // due entries read: as many as asked means more may be due
    std::vector<Recipient> due;        // to deliver now; marked in flight
    std::vector<Recipient> expired;    // lifetime ran out: now expired (final)
    std::vector<Recipient> suppressed; // on the suppression list: now suppressed (final)
};

// The result of one attempt for one recipient.
struct Outcome {
    std::uint64_t job_id = 0, seq = 0;
    RcptState state = RcptState::deferred;
    std::int64_t next_attempt = 0;  // deferred only
    std::int64_t attempt_time = 0;
    int reply_code = 0;
    std::string dsn, reply_text, host, path;
    bool count_attempt = true;      // false for a recipient put back without being tried
    bool suppress = false;          // add the address to the suppression list (bad mailbox)
};

// suppressions_of() as text: "3 (bounce 1, complaint 1, manual 0, unsubscribed 1)".
std::string suppression_summary(const std::map<std::string, std::uint64_t>& by_reason);

class QueueStore {
public:
    explicit QueueStore(const std::string& queue_directory);
    Environment& env() { return *env_; }

    // ---- intake (milter, mxlanectl submit)
    // Stores a message durably (the log is on the disk when it returns). Threads
    // that call it together share one transaction (queue_store_intake.cpp).
    IntakeResult add_message(const Intake& in, std::istream& text, std::int64_t now);
    // Group transactions add_message ran since open (fewer than messages under load).
    std::uint64_t intake_groups() const { return intake_groups_.load(); }
    // Tests: while held, intakes wait; released, the first of them runs them all as one group.
    void hold_intake_groups_for_test(bool hold);
    // How long a leader gathers the intakes under way (queue_store_intake.cpp; 1 ms).
    void set_gather_wait_for_test(std::chrono::microseconds wait) { gather_wait_ = wait; }
    std::size_t intakes_waiting_for_test();
    // More recipients for a message added with job_state incoming; one transaction per call.
    void add_recipients(std::uint64_t job_id, std::uint64_t message_id,
                        std::span<const NewRecipient> rcpts, std::int64_t now);
    // Makes an incoming job active (its recipients become deliverable).
    void activate_job(std::uint64_t job_id);
    // A message of at most this many recipients is stored with them packed in one
    // record, expanded into recipient records later (queue_store_packed.cpp).
    static constexpr std::size_t kPackedMax = 1000;
    // Expands packed recipients (of every job, or of one) into recipient records and
    // due entries, in batches of transactions; returns how many. Every call below that
    // reads or changes recipients by record does this first.
    std::size_t expand_packed(std::optional<std::uint64_t> job_id = std::nullopt);

    // ---- scheduler
    // Puts recipients left in flight by a process that died back into the due index.
    std::size_t recover_inflight(std::int64_t now);
    // Takes up to `limit` recipients due at or before `until` in time order, in one
    // transaction: expired and suppressed ones get their final state, the others
    // leave the due index and are marked in flight until their result is written
    // (or, if this process dies, until recover_inflight at the next start). A
    // recipient whose job is held is not returned: it becomes held. Committed
    // write_nosync (see Commit).
    Claim claim_due(std::int64_t until, std::size_t limit, std::int64_t now, std::int64_t lifetime_ms);
    // Writes results in one transaction; returns the ids of jobs that just finished.
    // Committed write_nosync (see Commit). When the job is held, an undecided outcome
    // (deferred, or put back untried) leaves the recipient held instead of due.
    std::vector<std::uint64_t> write_results(std::span<const Outcome> outcomes);
    // Ids of the jobs on hold (the scheduler polls them to stop what it holds of them).
    std::vector<std::uint64_t> held_jobs();
    // Earliest next_attempt in the due index, if any.
    std::optional<std::int64_t> next_due();
    // Closes keyed jobs that had no message for their open_ms by `now`; returns the
    // ids of those that are done with it (nothing left to deliver): their reports are due.
    std::vector<std::uint64_t> close_idle_jobs(std::int64_t now);

    // ---- reading
    std::optional<Job> job(std::uint64_t id);
    std::vector<Job> jobs();
    std::vector<Message> messages(std::uint64_t job_id);
    std::optional<Message> message(std::uint64_t job_id, std::uint64_t msg_id);
    std::optional<Recipient> recipient(std::uint64_t job_id, std::uint64_t seq);
    // Calls f for each recipient of the job in sequence order (optionally one state);
    // f returns false to stop. Reads in batches so a million recipients stream.
    void each_recipient(std::uint64_t job_id, std::optional<RcptState> state,
                        const std::function<bool(const Recipient&)>& f);
    // The message text, chunk by chunk.
    void read_text(const Message& m, const std::function<void(std::string_view)>& f);
    std::string text(const Message& m);
    std::optional<std::uint64_t> job_by_name(const std::string& name);

    // ---- admin
    // Also counts up flush_generation(), which the qrunner polls: a flush
    // retries destinations paused as unreachable at once (postqueue -f).
    std::size_t flush(std::optional<std::uint64_t> job_id, std::int64_t now);
    std::uint64_t flush_generation();
    // `reason` is kept with the job (mxlanectl job shows it) until it is released.
    std::size_t hold(std::uint64_t job_id, const std::string& reason = {});
    std::size_t release(std::uint64_t job_id, std::int64_t now);
    std::size_t inflight_count(std::uint64_t job_id);
    void remove_job(std::uint64_t job_id);
    void set_notified(std::uint64_t job_id);

    // ---- suppression list (addresses compared lower-cased)
    // reason: bounce, complaint, unsubscribed or manual; job: where it came from (0: none).
    bool suppress(const std::string& address, const std::string& reason, std::int64_t now,
                  std::uint64_t job = 0);  // false: already there
    bool unsuppress(const std::string& address);
    bool is_suppressed(const std::string& address);
    using Suppression = store::Suppression;
    std::vector<Suppression> suppressions();
    std::optional<Suppression> suppression(const std::string& address);
    // Every addition and removal is numbered in suppressed_log.db (the last
    // kSuppressionLogKeep kept), so that a reader (shared_state's sync) learns
    // what changed since it last looked without reading the whole list.
    struct SuppressionChange {
        std::uint64_t number = 0;
        bool added = false;
        std::string address, reason;
    };
    static constexpr std::uint64_t kSuppressionLogKeep = 100000;
    std::uint64_t suppression_log_end();  // the last change's number, 0 when none
    // The changes after `after`, at most `max`; nullopt when some of them are
    // no longer kept (or the log is behind `after`): compare the whole lists.
    std::optional<std::vector<SuppressionChange>> suppression_changes(std::uint64_t after, std::size_t max);
    // Another host's change (shared_state): made without a log entry, so that it is not sent back.
    bool suppress_unlogged(const std::string& address, const std::string& reason, std::int64_t now);
    bool unsuppress_unlogged(const std::string& address);
    // How many addresses each reason put on the list because of job_id: every
    // kSuppressionReasons entry, 0 where none (a scan of the list).
    std::map<std::string, std::uint64_t> suppressions_of(std::uint64_t job_id);

    // ---- reports after delivery (the milter reads them; queue_store_reports.cpp)
    // An asynchronous bounce: a recipient delivered, relayed or still pending
    // becomes bounced with dsn = status and last reply = diagnostic, in one
    // transaction with its job's counters and the due index; with suppress its
    // address goes on the suppression list (reason bounce, the job). false, and
    // nothing changed, when the recipient does not exist, is already bounced or
    // expired, or is in delivery right now.
    bool bounce_after(std::uint64_t job_id, std::uint64_t seq, const std::string& status,
                      const std::string& diagnostic, bool suppress, std::int64_t now);
    // A complaint (feedback loop) about a recipient: its address is suppressed
    // (reason complaint, the job) and the job's complaint count goes up (once
    // per recipient). nullopt when the recipient does not exist.
    struct ComplaintCount {
        std::uint64_t complaints = 0, delivered = 0;  // the job's, after this one
        bool counted = false;                         // false: this recipient had complained already
        std::string address;
    };
    std::optional<ComplaintCount> complaint(std::uint64_t job_id, std::uint64_t seq, std::int64_t now);
    // The job's complaints so far.
    std::uint64_t complaints(std::uint64_t job_id);
    // Drops the job's complaint count and marks (remove_job).
    void forget_complaints(std::uint64_t job_id);

    // ---- suspensions (destinations and providers paused until a time; names lower-cased)
    // Kept in meta under "suspend:" + name; the qrunner polls suspensions() and
    // pauses what is listed, mxlanectl pause/resume write them.
    struct Suspension {
        std::string name, reason;
        std::int64_t until = 0;   // ms since the epoch; kForever: until resumed
        std::int64_t added = 0;
    };
    static constexpr std::int64_t kForever = std::numeric_limits<std::int64_t>::max();
    // Sets (or replaces) the suspension of `name`.
    void suspend(const std::string& name, std::int64_t until, const std::string& reason, std::int64_t now);
    // Ends it; false when there was none (or it had run out).
    bool resume(const std::string& name);
    // The suspensions still running at `now`, by name; those that ran out are left out (and deleted).
    std::vector<Suspension> suspensions(std::int64_t now);
    // After a resume: recipients the qrunner put back untried until the
    // suspension's end (`until`, give or take kParkedSlackMs) are due at `now`.
    static constexpr std::int64_t kParkedSlackMs = 2000;
    std::size_t release_parked(std::int64_t until, std::int64_t now);

    // ---- warm-up of sending addresses (warmup_schedule; queue_store_warmup.cpp)
    // An address's first day of use, in days since the epoch (UTC); mxlanectl pools
    // warmup sets it to move an address to another day of its warm-up.
    void set_warmup_first_day(const std::string& address, std::int64_t day);
    std::map<std::string, std::int64_t> warmup_first_days();  // by address
    // Messages taken by an address towards a provider on one day of its life.
    struct WarmupCount {
        std::string address, provider;
        std::int64_t day = 0;   // day of the address's life (1: its first)
        std::int64_t sent = 0;
    };
    void set_warmup_count(const WarmupCount& count);
    std::vector<WarmupCount> warmup_counts();

private:
    std::optional<Job> load_job(DbTxn* txn, std::uint64_t id, std::uint32_t flags = 0);
    void save_job(DbTxn* txn, const Job& j);
    Job find_or_create_job(DbTxn* txn, const Intake& in, std::int64_t now, bool& created);
    // May a message at `now` join this job? (Not when done, closed, or idle past its open_ms.)
    bool takes_messages(DbTxn* txn, const Job& job, std::int64_t now);
    // When the job's last message came (its creation when it has none), read committed.
    std::int64_t last_message_time(DbTxn* txn, const Job& job);
    // The newest message this process has committed to the job (0: none seen): when it
    // is recent enough, an intake needs no look at messages.db to join the job.
    std::int64_t recent_intake(std::uint64_t job_id);
    void note_intake(std::uint64_t job_id, std::int64_t when);
    // Nothing of the job pending nor in flight (sums its counters into job).
    bool finished(DbTxn* txn, Job& job);
    // One message of a group transaction; add_message's writes.
    struct PendingIntake;
    IntakeResult put_message(DbTxn* txn, PendingIntake& p);
    // Runs a group of intakes in one transaction (each in its own when the group's fails).
    void store_group(std::span<PendingIntake* const> group);
    void store_text(DbTxn* txn, Message& m, std::istream& text);
    // Writes the message's recipients packed in one record, and its counters.
    // Expands the packed records whose keys start with `prefix` (every job's, one
    // job's, one message's); finds nothing to do without taking write locks.
    std::size_t expand_packed_under(const std::string& prefix);
    void pack_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                         std::span<const NewRecipient> rcpts, std::int64_t now);
    // Writes recipient records (indexes from first_index on, queued, due at queued_at) and their due entries.
    void put_new_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id, std::uint64_t first_index,
                            std::span<const NewRecipient> rcpts, std::int64_t queued_at);
    void insert_recipients(DbTxn* txn, std::uint64_t job_id, std::uint64_t message_id,
                           std::span<const NewRecipient> rcpts, std::int64_t now, bool new_message);
    // The recipient, or nothing (logged, with its job and seq) when its record cannot be decoded.
    std::optional<Recipient> decode_or_report(const std::string& key, std::string_view data);
    // Adds deltas to a message's per-state counters.
    void add_counts(DbTxn* txn, std::uint64_t job_id, std::uint64_t msg_id,
                    const std::array<std::int64_t, kStateCount>& delta);
    void sum_counts(DbTxn* txn, Job& job);
    // Writes a recipient and keeps the due index in step with it: the entry for
    // `before` (the record as stored; empty for a new or claimed one) goes, the
    // one for `after` comes, when they differ.
    void save_recipient(DbTxn* txn, const std::string& key, std::string_view before, const std::string& after);
    // Applies change to every recipient of a job (in batches of transactions); change
    // returns false to leave a recipient as it is. Returns how many changed.
    std::size_t rewrite_recipients(std::uint64_t job_id,
                                   const std::function<bool(DbTxn*, Recipient&)>& change);

    // The suppression list's writes, logged (suppressed_log) unless `logged` is false.
    bool add_suppression(DbTxn* txn, const Suppression& s, bool logged = true);  // false: already there
    bool remove_suppression(DbTxn* txn, const std::string& address, bool logged = true);
    void log_suppression(DbTxn* txn, bool added, const std::string& address, const std::string& reason);

    std::unique_ptr<Environment> env_;
    std::mutex recent_mu_;
    std::map<std::uint64_t, std::int64_t> recent_;  // note_intake's, by job id
    std::mutex group_mu_;  // the intakes waiting for a group transaction
    std::condition_variable group_done_;
    std::vector<PendingIntake*> group_waiting_;
    bool group_running_ = false;
    std::condition_variable group_arrived_;  // a leader gathering its group waits on it
    std::chrono::microseconds gather_wait_{1000};
    std::atomic<std::uint64_t> intake_groups_{0};
};

}  // namespace mxlane::store
