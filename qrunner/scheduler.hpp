// scheduler: due index -> destinations -> connections; routing, limits, pauses, and the end of a run.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "libshared/bounce_class.hpp"
#include "libshared/event_log.hpp"
#include "libshared/json.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/webhook_spool.hpp"
#include "qrunner/compliance/domain_checks.hpp"
#include "qrunner/destination.hpp"
#include "qrunner/metrics.hpp"
#include "qrunner/dns/resolver.hpp"
#include "qrunner/notify.hpp"
#include "qrunner/outcome.hpp"
#include "qrunner/result_writer.hpp"
#include "qrunner/seen_jobs.hpp"
#include "qrunner/settings.hpp"
#include "qrunner/shared_lists.hpp"
#include "qrunner/shared_leases.hpp"
#include "qrunner/shared_state.hpp"
#include "qrunner/shared_warmup.hpp"
#include "qrunner/shared_throttles.hpp"
#include "qrunner/smtp/session.hpp"
#include "qrunner/warmup.hpp"

namespace mxlane::qrunner {

// A point of the steady clock as store time (ms since the epoch), `now` being both's now.
std::int64_t wall_ms(Clock::time_point t, Clock::time_point now);

// What a sending address's shaping and warm-up count are kept towards: the
// provider of the best MX host ("mx:.google.com"), else that host ("mx:HOST").
std::string source_towards(const Settings& s, const std::vector<dns::MxHost>& hosts);
// "src:ADDRESS/TOWARDS": the name of a source-scope suspension or throttle.
std::string source_shaping_name(const std::string& address, const std::string& towards);

// Logs an exception that ended a coroutine (co_spawn's completion handler).
void log_exception(std::exception_ptr e, const char* what);

class Scheduler final : public Outcomes {
public:
    Scheduler(boost::asio::io_context& io, store::QueueStore& store, std::shared_ptr<const Settings> settings,
              bool once);
    ~Scheduler() override;

    // The claim loop; returns when a --once run is complete or after stop().
    // Spawn it on executor(): its waits and wake() share that strand.
    boost::asio::awaitable<void> run();
    boost::asio::any_io_executor executor() const { return control_; }
    // SIGTERM: take nothing new, finish what is in flight (for shutdown_timeout
    // at most), put back what waits.
    void stop();
    // After run() returned: recipients abandoned at the end of shutdown_timeout
    // (their transactions never ended), still in flight in the store.
    bool abandoned() const { return abandoned_; }
    // SIGHUP: new settings apply to connections opened from now on.
    void reload(std::shared_ptr<const Settings> settings);

    // ---- used by delivery (connection coroutines)
    std::shared_ptr<const Settings> settings() const;
    // A copy of d's hosts: a new lookup for d (route_direct, route_relay) replaces
    // them, under mu_, while a connection may still be trying them one by one.
    std::vector<dns::MxHost> hosts(const Destination& d) const;
    // What a connection that has sent `sent` messages does next: the next
    // transaction; or wait until `wait_until` for max_messages_per_hour (then
    // call again with waited = true); or neither: close.
    struct Next {
        OwnedWork work;
        std::optional<Clock::time_point> wait_until;
    };
    Next take_work(Destination& d, int sent, bool waited);
    void connection_done(const std::shared_ptr<Destination>& d) override;
    // Owners of claimed work and connection slots report through this.
    const std::shared_ptr<OutcomeGate>& gate() const { return gate_; }
    // The reply_rules rule that slows the destination down for this reply
    // (suspend or throttle, of scope destination, provider or source); without
    // reply_rules, a 421 or a 4xx matching destination_backoff_patterns suspends
    // it for destination_backoff (a rule of duration 0).
    std::optional<ReplyRule> slowing_rule(const Reply& reply) const;
    bool throttling(const Reply& reply) const { return slowing_rule(reply).has_value(); }
    // Such a reply from d: halve its concurrency, pause it for destination_backoff.
    void back_off(const std::shared_ptr<Destination>& d, const Reply& why);
    // The reply that decided a transaction to d (mxlanectl destinations shows it).
    void note_reply(const std::shared_ptr<Destination>& d, const Reply& reply);
    // A transaction to d without temporary failures (ramps a backed-off destination up).
    void transaction_clean(const std::shared_ptr<Destination>& d);
    // Every host of d failed: fail `first` and everything queued for d, and pause d.
    void destination_unreachable(const std::shared_ptr<Destination>& d, OwnedWork first, const Reply& why,
                                 const std::string& relay);
    // The replies for a transaction's recipients (one each): logs every one in
    // Postfix's shape and records it, except temporary failures on the direct
    // path in combined mode, which go on to the relay in the same pass.
    // details[i], when given, is the log text for replies[i].
    // Delivery reports through OwnedWork, which calls this.
    void conclude(const Work& w, const std::vector<Reply>& replies, const std::string& relay, double connect_s,
                  double transmit_s, const std::vector<std::string>& details) override;
    void put_back(const Work& w, std::int64_t due_ms) override;
    dns::Resolver& resolver() { return resolver_; }
    // GET /metrics: results and latency so far, and the destinations and
    // providers as gauges (Prometheus text format).
    std::string metrics_text() const;
    // An event learnt outside delivery (type unsubscribed: a one-click POST) to event_log and the spool.
    void recipient_event(const store::Recipient& r, const std::string& type);
    // event_webhook's spool, which gets every event too; null when event_webhook is empty.
    WebhookSpool* webhook_spool() { return spool_.get(); }
    boost::asio::io_context& io() { return io_; }
    // Where personalised messages are DKIM-signed, off the event loop.
    boost::asio::thread_pool& sign_pool() { return sign_pool_; }
    std::shared_ptr<smtp::TlsContext> tls_context(const std::string& ca_file);

private:
    struct ClaimBatch;
    ClaimBatch claim(std::int64_t until, std::size_t limit);  // on the store thread
    std::shared_ptr<const MessageData> load_message(std::uint64_t job_id, std::uint64_t msg_id);
    // On the store thread, as a message is loaded (scheduler_dkim.cpp): a
    // plain message waits to be signed once, for all its transactions, by
    // dkim_sign_loaded at the end of the claim; one whose From: domain has no
    // key is held or warned about (dkim_missing_key).
    void dkim_at_load(const std::shared_ptr<MessageData>& m, const Settings& s);
    void dkim_sign_loaded(const Settings& s);
    void dkim_missing(MessageData& m, const Settings& s, const std::string& domain);
    // On the store thread, after a claim: compliance_check of the From: domain
    // of each job claimed for the first time (scheduler_compliance.cpp);
    // the jobs it holds go into `held`.
    void compliance_at_claim(const std::map<std::uint64_t, std::shared_ptr<const MessageData>>& messages,
                             const std::shared_ptr<const Settings>& s, std::set<std::uint64_t>& held);
    void dispatch(ClaimBatch& batch);
    boost::asio::awaitable<void> route_direct(std::string domain, std::vector<OwnedWork> works);
    boost::asio::awaitable<void> route_relay(std::vector<OwnedWork> works);
    void enqueue(const std::shared_ptr<Destination>& d, std::vector<OwnedWork> works);
    using Starts = std::vector<std::pair<std::shared_ptr<Destination>, OwnedWork>>;
    // Under mu_: takes the work that new connections may start on now. The
    // connections are spawned by spawn() after mu_ is released, since co_spawn
    // may run the coroutine's first steps at once, and those take mu_.
    void collect_starts(const std::shared_ptr<Destination>& d, Starts& starts);
    void collect_waiting(Starts& starts);
    // After mu_ is released: starts the connections, and writes the log lines
    // made under mu_ (flush_notes), so that no log write happens under it.
    void spawn(Starts& starts);
    void flush_notes();
    // Under mu_: the destination for `key`, made and shaped on first use
    // (its hosts, the latest lookup's, decide its provider).
    std::shared_ptr<Destination> destination_for(const std::string& key, const std::string& policy_name, Path path,
                                                 const Settings& s, std::vector<dns::MxHost> hosts,
                                                 const SourceAddress* source = nullptr);
    // ---- sending addresses (source_pools; scheduler_pools.cpp)
    // On the store thread, as a message is loaded: a pool source_pools does not
    // name holds its job, with the reason.
    void pool_at_load(MessageData& m, const Settings& s);
    // Direct work for `key` spread over its pools' addresses (each address a
    // destination of its own); what no address may send today waits for the next day.
    // With shared_state, the batch's size is first reserved from each address's cap in Redis.
    boost::asio::awaitable<void> route_from_pools(const std::string& key, const std::string& domain,
                                                  std::vector<dns::MxHost> hosts, std::vector<OwnedWork> works);
    // The batch's share of each of its pools' addresses' caps towards `towards`,
    // reserved in Redis (shared_warmup_); Redis's first days are taken over.
    boost::asio::awaitable<WarmupAllowance> reserve_warmup(const Settings& s, const std::string& towards,
                                                           std::int64_t today, const std::vector<OwnedWork>& works);
    // Under mu_: what the address may still send towards the provider today
    // (allowance: what the batch reserved across hosts; null: this host alone).
    std::int64_t warmup_room(const SourceAddress& a, const std::string& towards, std::int64_t today,
                             const WarmupAllowance* allowance) const;
    // Under mu_: works by the address each goes from (split where a warm-up cap
    // leaves room for part of one); capped gets what no address may send today.
    std::map<std::string, std::vector<OwnedWork>> assign_sources(std::vector<OwnedWork> works,
                                                                 const std::string& towards,
                                                                 std::vector<OwnedWork>& capped,
                                                                 WarmupAllowance* allowance = nullptr);
    // Under mu_: the pool's next address in turn with warm-up room, preferring
    // those no source-scope throttle or suspension holds; null: none has room.
    const SourceAddress* pick_source(const std::vector<const SourceAddress*>& addresses, const std::string& pool,
                                     const std::string& towards, std::int64_t today, Clock::time_point now,
                                     const WarmupAllowance* allowance = nullptr);
    // Under mu_: n messages counted against the address's cap (the store gets the count).
    void take_warmup(const SourceAddress& a, const std::string& towards, std::int64_t n, std::int64_t today);
    // Under mu_: d's shaping by its sending address towards its provider (limits: its provider's or its own).
    void shape_source(Destination& d, const Shaping& limits, Clock::time_point now);
    // First days (every poll) and, the first time, counts of the warm-up from the store.
    boost::asio::awaitable<void> read_warmup();
    // The snapshot's "sources": each sending address's shaping towards each
    // provider it sent to (connections, a source-scope throttle or pause).
    boost::json::array source_rows() const;
    // Under mu_: limits, rates and backoff of d and its provider from the
    // settings (kept state: tokens, backoff).
    void shape(Destination& d, const Settings& s, Clock::time_point now);
    // ---- suspensions kept in the store (scheduler_suspend.cpp)
    // Under mu_: a suspension (reply rule) goes to the store, on the store thread.
    void keep_suspension(const std::string& name, std::int64_t until, const std::string& reason);
    // Under mu_: the store's suspension of sh's name, as last read, holds sh; a removed one resumes it.
    // True when sh changed.
    bool apply_suspension(Shaping& sh, Clock::time_point now);
    void note_suspensions(std::vector<store::QueueStore::Suspension> list);
    boost::asio::awaitable<void> read_suspensions();
    boost::asio::awaitable<void> release_parked(std::int64_t until);
    // Every second: the store's suspensions, and the snapshot of the destinations.
    boost::asio::awaitable<void> watch_suspensions();
    // queue_directory/destinations.json for mxlanectl destinations.
    boost::json::array destination_rows() const;
    std::string snapshot() const;
    void write_snapshot();
    void remove_snapshot();
    // Under mu_: work held back by the rate or a pause waits in d for a while
    // (a timer wakes d); what would wait longer goes back to the store.
    void hold_or_park(const std::shared_ptr<Destination>& d, Clock::time_point now);
    void wake_at(const std::shared_ptr<Destination>& d, Clock::time_point when);
    void fail_route(std::vector<OwnedWork>& works, const Reply& why);
    // Under mu_: work of held jobs (held_jobs_) leaves d's queue for the store,
    // where it becomes held, so that nothing more of a held job is sent.
    void drop_held(Destination& d);
    // Polls the store for held jobs while recipients are in flight.
    boost::asio::awaitable<void> watch_holds();
    // Closes keyed jobs idle past their job_idle_close (on the store thread); those
    // with nothing left to deliver are done, and reported on as written() does.
    void close_idle_jobs();
    boost::asio::awaitable<void> watch_open_jobs();
    void note_held(const std::vector<std::uint64_t>& ids);
    // Destinations paused as unreachable are tried again at once.
    void clear_pauses(const std::string& why);
    // At the end of shutdown_timeout: closes the gate, so that what is still on
    // the wire reports nothing and stays in flight in the store.
    void abandon();
    // After shutdown_timeout: waits until every result concluded so far is written.
    boost::asio::awaitable<void> drain_results();
    void record(const store::Recipient& r, store::RcptState state, const Reply& reply, BounceClass cls,
                const std::string& relay,
                Path path, std::int64_t now);
    // A failed attempt's part in its job: a reply_rules "job hold" rule, or the
    // auth_failure_hold-th failure of class auth, holds the job with the reason.
    void job_failure(const store::Recipient& r, const Reply& reply, const ReplyRule* rule, BounceClass cls,
                     const Settings& s);
    void hold_job(std::uint64_t job_id, const std::string& reason);
    void log_final(const store::Recipient& r, const std::string& status, const std::string& dsn,
                   const std::string& detail, std::int64_t now);
    void written(std::size_t n, const std::vector<std::uint64_t>& finished_jobs);
    // On the store thread, after a claim: recipients the claim made final
    // (expired, suppressed) go through the result writer too, so that their
    // job can finish and be reported on.
    void settle(const store::Claim& claim);
    // When notifications stored now become due: in a --once run, at its start,
    // so that the run sends them too.
    std::int64_t notify_due() const;
    void wake();
    bool idle() const;

    boost::asio::io_context& io_;
    store::QueueStore& store_;
    bool once_;
    boost::asio::thread_pool store_thread_{1};  // every store call runs here, off the io_context
    boost::asio::thread_pool sign_pool_{std::max(1u, std::thread::hardware_concurrency())};
    boost::asio::strand<boost::asio::io_context::executor_type> control_;
    boost::asio::steady_timer wake_timer_;
    bool woken_ = false;  // on control_: a wake() the claim loop has not seen yet
    dns::Resolver resolver_;
    ResultWriter writer_;
    Notifier notifier_;
    std::atomic<std::int64_t> run_start_ms_{0};

    mutable std::mutex mu_;  // guards everything below
    std::shared_ptr<const Settings> settings_;
    std::map<std::string, std::shared_ptr<Destination>> destinations_;
    std::map<std::string, std::shared_ptr<Shaping>> providers_;  // by their mx: line
    std::map<std::string, store::QueueStore::Suspension> suspensions_;  // the store's, as last read
    std::map<std::string, std::shared_ptr<Shaping>> sources_;  // "src:ADDRESS/mx:..." (scope source)
    WarmupBook warmup_;
    bool warmup_read_ = false;  // control_ only: the counts were read from the store
    std::map<std::string, std::size_t> pool_turns_;  // the next address's turn, by pool
    bool ended_ = false;            // control_ only: run() returned; no more snapshots
    bool snapshot_failed_ = false;  // control_ only: the last write failed (logged once)
    std::map<std::string, std::shared_ptr<smtp::TlsContext>> tls_contexts_;
    ThrottlePatterns throttle_patterns_;  // destination_backoff_patterns
    std::size_t connections_ = 0;
    std::atomic<std::size_t> outstanding_{0};  // claimed recipients whose result is not yet written
    std::atomic<std::size_t> routing_{0};      // routing coroutines still running
    std::atomic<bool> stopping_{false};
    std::atomic<bool> abandoned_{false};
    std::shared_ptr<OutcomeGate> gate_ = std::make_shared<OutcomeGate>(*this);
    std::set<std::uint64_t> held_jobs_;  // jobs on hold, as last read from the store
    std::optional<std::uint64_t> flushes_seen_;  // store thread only: flush_generation() at the last claim
    std::vector<std::string> notes_;     // log lines made under mu_, for flush_notes()
    std::mt19937 rng_{std::random_device{}()};
    std::map<std::uint64_t, std::weak_ptr<const MessageData>> messages_;  // store thread only
    std::map<std::uint64_t, int> auth_failures_;  // under mu_: failures of class auth per job
    Metrics metrics_;
    EventLog events_;                               // event_log (off when empty)
    std::unique_ptr<WebhookSpool> spool_;           // event_webhook (null when empty)
    bool events_on() const { return events_.on() || spool_; }
    void write_events(const std::vector<Event>& events);  // to event_log and the webhook spool
    std::map<std::uint64_t, std::string> job_names_;  // under mu_: for the event log, when it is on
    std::string job_name(std::uint64_t job_id);
    // A recipient's result as an event (event_log).
    // field_names: the message's personalisation columns (null: read from the store) for event_fields.
    Event event_of(const store::Recipient& r, const std::string& type, std::string_view cls, const std::string& dsn,
                   const std::string& reply, const std::string& host, std::int64_t now,
                   const std::vector<std::string>* field_names = nullptr);
    // event_log after a reload: the same file opened anew (rotation), or the new one.
    void reopen_event_log(const Settings& next);
    // ---- shared_state (scheduler_shared.cpp): limits, hosts and the suppression list across hosts
    void start_shared();
    // Under no lock: the limits divided anew (sharing started or stopped), and what waits tried again.
    void reshape_all();
    boost::json::object in_flight() const;
    // Every second: the heartbeat (with in_flight()) and this host's suppression list changes.
    boost::asio::awaitable<void> beat_shared();
    std::unique_ptr<RedisClient> redis_, redis_sub_;
    std::unique_ptr<SharedState> shared_;  // null: shared_state is empty, this host alone
    std::unique_ptr<SharedWarmup> shared_warmup_;  // null: warm-up counts are this host's alone
    std::unique_ptr<SharedLeases> shared_leases_;  // destination_concurrency across hosts (null with shared_)
    std::unique_ptr<SharedList> shared_suppressions_, shared_suspensions_;
    int hosts_written_ = 0;  // control_ only: the host count last kept in queue_directory
    // Store thread: true the first time `job_id` is seen; ended jobs are forgotten.
    bool first_sight(SeenJobs& seen, std::uint64_t job_id);
    SeenJobs dkim_warned_;  // store thread only: jobs warned about sending unsigned
    // ---- reply rules' throttles on every host (scheduler_throttles.cpp)
    // What the limits are divided by: 1, or the hosts last seen while Redis is away.
    std::int64_t share_divisor() const { return shared_ ? shared_->divisor() : 1; }
    // Under mu_: a throttle rule matched a reply here: sh slows down, and so do the other hosts.
    void throttle_here(Shaping& sh, const ReplyRule& rule, Clock::time_point now);
    // Under mu_: a throttle of sh's name that another host set, not yet applied here, slows sh
    // (its rate, and its concurrency halved as on the host that saw the reply).
    void apply_throttle(Shaping& sh, Clock::time_point now);
    void apply_throttles(Clock::time_point now);  // every Shaping
    ThrottleTable throttles_;
    std::unique_ptr<SharedList> shared_throttles_;
    std::vector<std::shared_ptr<MessageData>> loaded_unsigned_;  // store thread only: for dkim_sign_loaded
    SeenJobs compliance_seen_;  // store thread only: jobs whose domain compliance_check has seen
    compliance::DomainChecks checks_{std::chrono::hours(1)};  // a domain's result is kept an hour
};

}  // namespace mxlane::qrunner
