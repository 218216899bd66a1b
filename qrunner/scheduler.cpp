// scheduler: due index -> claims -> dispatch to destinations; reloads, holds, and the end of a run.
#include "qrunner/scheduler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "qrunner/delivery.hpp"
#include "qrunner/recipient_loop.hpp"
#include "qrunner/retry.hpp"
#include "qrunner/smtp/message_data.hpp"
#include "qrunner/trace.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;
using store::RcptState;

namespace {

constexpr std::size_t kClaimBatch = 2000;
// How often the store is asked for held jobs while recipients are in flight.
constexpr auto kHoldPoll = std::chrono::milliseconds(200);

}  // namespace

void log_exception(std::exception_ptr e, const char* what) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        log::error(std::string(what) + ": " + ex.what());
    }
}

struct Scheduler::ClaimBatch {
    store::Claim claim;
    std::map<std::uint64_t, std::shared_ptr<const MessageData>> messages;
    std::int64_t now = 0;
    std::size_t limit = 0;
    std::set<std::uint64_t> compliance_held;  // jobs compliance_check = hold has just held
    bool full() const { return claim.scanned >= limit; }
};

Scheduler::Scheduler(asio::io_context& io, store::QueueStore& store, std::shared_ptr<const Settings> settings,
                     bool once)
    : io_(io),
      store_(store),
      once_(once),
      control_(asio::make_strand(io)),
      wake_timer_(control_),
      resolver_(io, settings->cfg.list("dns_servers"),
                std::chrono::milliseconds(settings->cfg.seconds("dns_timeout") * 1000)),
      writer_(store, store_thread_.get_executor(),
              [this](std::size_t n, const std::vector<std::uint64_t>& done) { written(n, done); }),
      notifier_(store),
      settings_(std::move(settings)),
      throttle_patterns_(ThrottlePatterns::parse(settings_->cfg.get("destination_backoff_patterns"))) {
    tls_context(settings_->smtp.tls_ca_file);
    try {
        events_.open(settings_->cfg.get("event_log"));
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("event_log: " + std::string(e.what()));  // the start fails, saying so
    }
    if (!settings_->cfg.get("event_webhook").empty()) {
        try {
            spool_ = std::make_unique<WebhookSpool>(settings_->queue_directory);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error("event_webhook: " + std::string(e.what()));
        }
    }
    start_shared();
}

Scheduler::~Scheduler() {
    // Owners that end after this report nothing: their recipients stay in
    // flight in the store and are due again at the next start.
    gate_->close();
    // First: a claim may wait for a check on the store thread. A --once run
    // lets the checks end, so that what they find is logged.
    if (once_) checks_.finish();
    else checks_.stop();
    store_thread_.stop();
    store_thread_.join();
}

std::shared_ptr<const Settings> Scheduler::settings() const {
    std::lock_guard lock(mu_);
    return settings_;
}

std::vector<dns::MxHost> Scheduler::hosts(const Destination& d) const {
    std::lock_guard lock(mu_);
    return d.hosts;
}

void Scheduler::reload(std::shared_ptr<const Settings> settings) {
    tls_context(settings->smtp.tls_ca_file);
    // A reload is how a route gets fixed (smtp_port, relay_host, dns_servers):
    // nothing keeps replaying the old "unreachable" after it.
    clear_pauses("reload");
    reopen_event_log(*settings);  // outside mu_
    Starts starts;
    {
        std::lock_guard lock(mu_);
        settings_ = std::move(settings);
        throttle_patterns_ = ThrottlePatterns::parse(settings_->cfg.get("destination_backoff_patterns"));
        // Connections in flight go on; the new limits decide what starts from now.
        const auto now = Clock::now();
        for (auto& [key, d] : destinations_) shape(*d, *settings_, now);
        collect_waiting(starts);
    }
    spawn(starts);
}

// Reading a CA bundle takes a while: it is never done under mu_ (and the
// constructor and reload() make the default one before delivery needs it).
std::shared_ptr<smtp::TlsContext> Scheduler::tls_context(const std::string& ca_file) {
    {
        std::lock_guard lock(mu_);
        if (auto it = tls_contexts_.find(ca_file); it != tls_contexts_.end()) return it->second;
    }
    auto made = std::make_shared<smtp::TlsContext>(ca_file);
    std::lock_guard lock(mu_);
    return tls_contexts_.try_emplace(ca_file, std::move(made)).first->second;
}

void Scheduler::stop() {
    stopping_ = true;
    wake();
}

// A wake that comes while the loop is busy (claiming, dispatching) is kept in
// woken_, so that the loop's next wait does not sleep through it.
void Scheduler::wake() {
    asio::post(control_, [this] {
        woken_ = true;
        wake_timer_.cancel();
    });
}

bool Scheduler::idle() const {
    std::lock_guard lock(mu_);
    return outstanding_ == 0 && routing_ == 0 && connections_ == 0;
}

// ---------------------------------------------------------------- the claim loop

asio::awaitable<void> Scheduler::run() {
    const std::int64_t start = store::now_ms();
    run_start_ms_ = start;
    co_await asio::co_spawn(
        store_thread_.get_executor(),
        [this]() -> asio::awaitable<void> {
            try {
                close_idle_jobs();
                notifier_.sweep(*settings(), notify_due());
            } catch (const std::exception& e) {
                store::fatal_if_panic(e);
                log::error(std::string("cannot look for finished jobs to report on: ") + e.what());
            }
            co_return;
        },
        asio::use_awaitable);
    asio::co_spawn(control_, watch_holds(), [](std::exception_ptr e) { log_exception(e, "watching for held jobs"); });
    asio::co_spawn(control_, watch_open_jobs(), [](std::exception_ptr e) { log_exception(e, "closing idle jobs"); });
    // Suspensions kept in the store hold from the first claim on (a --once run too).
    co_await read_suspensions();
    asio::co_spawn(control_, watch_suspensions(),
                   [](std::exception_ptr e) { log_exception(e, "watching for suspended destinations"); });
    if (shared_) asio::co_spawn(control_, beat_shared(), [](std::exception_ptr e) { log_exception(e, "shared_state"); });
    for (;;) {
        if (stopping_) break;
        auto s = settings();
        const std::size_t cap = std::max<std::size_t>(kClaimBatch, s->max_connections * 50);
        bool more = false;
        // A --once run ends after a claim that found nothing while nothing was
        // in flight before it: a result written after the claim began (results
        // commit on their own thread) may have stored a notification the claim
        // did not see, so idleness is taken before the claim, not after.
        const bool quiet = idle();
        std::size_t scanned = 1;
        if (outstanding_ < cap) {
            std::size_t limit = std::min(kClaimBatch, cap - outstanding_);
            std::int64_t until = once_ ? start : store::now_ms();
            try {
                ClaimBatch batch = co_await asio::co_spawn(
                    store_thread_.get_executor(),
                    [&]() -> asio::awaitable<ClaimBatch> { co_return claim(until, limit); }, asio::use_awaitable);
                more = batch.full();
                scanned = batch.claim.scanned;
                dispatch(batch);
            } catch (const std::exception& e) {
                store::fatal_if_panic(e);
                log::error(std::string("cannot read due recipients from the queue: ") + e.what());
                scanned = 0;  // a --once run that cannot claim ends as before
            }
        }
        if (once_ && quiet && scanned == 0) break;
        if (more && outstanding_ < cap) continue;
        if (std::exchange(woken_, false)) continue;
        wake_timer_.expires_after(more ? std::chrono::seconds(1) : s->queue_run_delay);
        co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Stopping: what waits for a connection goes back to the queue untried.
    std::vector<OwnedWork> waiting;
    {
        std::lock_guard lock(mu_);
        for (auto& [key, d] : destinations_)
            for (auto& w : d->take_all()) waiting.push_back(std::move(w));
    }
    const std::int64_t now = store::now_ms();
    for (auto& w : waiting) w.put_back(now);
    // Transactions on the wire may finish for shutdown_timeout (a --once run
    // that was not stopped waits for them however long they take).
    const auto deadline = Clock::now() + settings()->shutdown_timeout;
    while (!idle()) {
        if (stopping_ && Clock::now() >= deadline) {
            abandon();
            co_await drain_results();
            break;
        }
        woken_ = false;
        wake_timer_.expires_after(std::chrono::milliseconds(50));
        co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    ended_ = true;  // on control_, as the snapshot's writes are
    remove_snapshot();
}

void Scheduler::abandon() {
    std::size_t connections;
    {
        std::lock_guard lock(mu_);
        connections = connections_;
    }
    abandoned_ = true;
    gate_->close();
    log::warning("shutdown_timeout (" + std::to_string(settings()->shutdown_timeout.count()) +
                 "s) reached: abandoning " + std::to_string(connections) +
                 " connections still on the wire; their recipients are due again");
}

asio::awaitable<void> Scheduler::drain_results() {
    // Nothing reports after the gate closed: once the writer holds nothing and
    // a task posted behind its last write has run, every result is written.
    while (writer_.pending() > 0) {
        wake_timer_.expires_after(std::chrono::milliseconds(10));
        co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await asio::co_spawn(store_thread_.get_executor(), []() -> asio::awaitable<void> { co_return; },
                            asio::use_awaitable);
}

// A job held while it is delivered: once the transactions on the wire have
// ended, nothing more of it is sent (claim_due skips held jobs, their results
// become held in the store, and this drops what waits in the destinations).
asio::awaitable<void> Scheduler::watch_holds() {
    asio::steady_timer timer(control_);
    while (!stopping_) {
        if (outstanding_ > 0) {
            std::optional<std::vector<std::uint64_t>> ids;
            try {
                ids = co_await asio::co_spawn(
                    store_thread_.get_executor(),
                    [this]() -> asio::awaitable<std::vector<std::uint64_t>> { co_return store_.held_jobs(); },
                    asio::use_awaitable);
            } catch (const std::exception& e) {
                store::fatal_if_panic(e);
                log::error(std::string("cannot read held jobs from the queue: ") + e.what());
            }
            if (ids) note_held(*ids);
        }
        timer.expires_after(kHoldPoll);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void Scheduler::note_held(const std::vector<std::uint64_t>& ids) {
    std::lock_guard lock(mu_);
    std::set<std::uint64_t> held(ids.begin(), ids.end());
    const bool more = std::any_of(held.begin(), held.end(), [&](auto id) { return !held_jobs_.contains(id); });
    held_jobs_ = std::move(held);
    if (more)
        for (auto& [key, d] : destinations_) drop_held(*d);
}

void Scheduler::clear_pauses(const std::string& why) {
    std::size_t n = 0;
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        for (auto& [key, d] : destinations_)
            if (d->end_pause(now)) ++n;
    }
    if (n) log::info(why + ": " + std::to_string(n) + " destinations paused as unreachable are tried again");
    wake();
}

Scheduler::ClaimBatch Scheduler::claim(std::int64_t until, std::size_t limit) {
    ClaimBatch b;
    b.now = store::now_ms();
    b.limit = limit;
    auto s = settings();
    // mxlanectl flush ran: destinations paused as unreachable are tried again,
    // before the recipients it made due are claimed (else they would meet the
    // old pause and be deferred with its stale reply).
    const std::uint64_t flushes = store_.flush_generation();
    if (flushes_seen_ && *flushes_seen_ != flushes) clear_pauses("mxlanectl flush");
    flushes_seen_ = flushes;
    b.claim = store_.claim_due(until, limit, b.now, s->lifetime_ms);
    outstanding_ += b.claim.due.size();
    settle(b.claim);
    for (const auto& r : b.claim.due)
        if (!b.messages.contains(r.message_id)) b.messages[r.message_id] = load_message(r.job_id, r.message_id);
    // With the settings load_message saw (a SIGHUP may have come since s was taken).
    if (auto now = settings(); now->dkim) dkim_sign_loaded(*now);
    else loaded_unsigned_.clear();
    compliance_at_claim(b.messages, settings(), b.compliance_held);
    std::erase_if(messages_, [](const auto& kv) { return kv.second.expired(); });
    return b;
}

std::shared_ptr<const MessageData> Scheduler::load_message(std::uint64_t job_id, std::uint64_t msg_id) {
    if (auto it = messages_.find(msg_id); it != messages_.end())
        if (auto m = it->second.lock()) return m;
    auto meta = store_.message(job_id, msg_id);
    if (!meta) return nullptr;
    auto m = std::make_shared<MessageData>();
    m->meta = *meta;
    m->job_token = store::format_job_id(job_id);
    if (events_on()) job_name(job_id);  // read once here, not per event
    m->text = store_.text(*meta);
    m->received = received_line(settings()->myhostname, m->job_token + "." + std::to_string(msg_id), store::now_ms());
    m->hops = hop_count(m->text);
    auto wire = smtp::to_wire(m->text);
    m->eight_bit = wire.eight_bit || meta->eight_bit;
    if (meta->personalised) m->plan = std::make_shared<const mime::RenderPlan>(m->text);
    else m->wire = std::make_shared<const std::string>(m->received + wire.text);
    if (auto s = settings(); s->dkim) dkim_at_load(m, *s);
    pool_at_load(*m, *settings());
    messages_[msg_id] = m;
    return m;
}

// ---------------------------------------------------------------- routing

void Scheduler::dispatch(ClaimBatch& batch) {
    for (const auto& r : batch.claim.expired)
        log_final(r, "expired", r.dsn.empty() ? "4.4.7" : r.dsn,
                  "message has been in the queue too long" + (r.reply_text.empty() ? "" : ": " + r.reply_text) +
                      (store::failure_class(r).empty() ? "" : " [class=" + std::string(store::failure_class(r)) + "]"),
                  batch.now);
    for (const auto& r : batch.claim.suppressed)
        log_final(r, "suppressed", "5.0.0", "recipient address is on the suppression list", batch.now);

    auto s = settings();
    const bool relay_only = s->mode == Mode::relay;
    // (relay?, domain, message) -> recipients, in claim order
    std::map<std::tuple<bool, std::string, std::uint64_t>, std::vector<store::Recipient>> groups;
    for (auto& r : batch.claim.due) {
        auto msg = batch.messages[r.message_id];
        if (!msg) {
            log::error(store::format_job_id(r.job_id) + ": message " + std::to_string(r.message_id) +
                       " is missing from the queue store; recipient " + r.address + " deferred");
            Work w;
            w.rcpts.push_back(r);
            w.claimed_ms = batch.now;
            OwnedWork(gate_, std::move(w))
                .conclude_all(Reply::make(451, "4.3.0", "message text missing from the queue store"), "none");
            continue;
        }
        const bool held = msg->dkim_hold || msg->pool_hold || batch.compliance_held.contains(r.job_id);
        if (held || !msg->sign_error.empty()) {
            Work w;
            w.message = msg;
            w.rcpts.push_back(std::move(r));
            w.claimed_ms = batch.now;
            OwnedWork owned(gate_, std::move(w));
            // Held: the job is on hold in the store, so what goes back becomes held.
            if (held) owned.put_back(batch.now);
            else owned.conclude_all(Reply::make(451, "4.3.0", msg->sign_error), "none");
            continue;
        }
        if (msg->hops > kHopLimit - 1) {  // ours would be one more than the limit
            Work w;
            w.message = msg;
            w.rcpts.push_back(std::move(r));
            w.claimed_ms = batch.now;
            OwnedWork(gate_, std::move(w))
                .conclude_all(Reply::make(554, "5.4.6",
                                          "too many hops: " + std::to_string(msg->hops) +
                                              " Received: header fields (mail loop)"),
                              "none");
            continue;
        }
        // Notifications go through the relay in every mode.
        bool via_relay = relay_only || is_notification(msg->meta);
        std::string domain = via_relay ? std::string() : domain_of(r.address);
        groups[{via_relay, domain, r.message_id}].push_back(std::move(r));
    }
    std::map<std::pair<bool, std::string>, std::vector<OwnedWork>> by_domain;
    for (auto& [key, rcpts] : groups) {
        const auto& [via_relay, domain, message_id] = key;
        auto msg = batch.messages[message_id];
        const std::string& where = via_relay ? s->relay.label() : domain;
        // A personalised or tokened (VERP, List-Unsubscribe) copy is one recipient's own.
        std::size_t per = msg->meta.personalised || needs_recipient_token(*s, msg->meta)
                              ? 1
                              : static_cast<std::size_t>(s->limit(where, "max_recipients_per_transaction"));
        for (std::size_t i = 0; i < rcpts.size(); i += per) {
            Work w;
            w.message = msg;
            w.domain = domain;
            w.path = via_relay ? Path::relay : Path::direct;
            w.claimed = Clock::now();
            w.claimed_ms = batch.now;
            w.rcpts.assign(std::make_move_iterator(rcpts.begin() + i),
                           std::make_move_iterator(rcpts.begin() + std::min(rcpts.size(), i + per)));
            by_domain[{via_relay, domain}].emplace_back(gate_, std::move(w));
        }
    }
    for (auto& [key, works] : by_domain) {
        ++routing_;
        auto route = key.first ? route_relay(std::move(works)) : route_direct(key.second, std::move(works));
        asio::co_spawn(io_, std::move(route), [this](std::exception_ptr e) {
            log_exception(e, "routing failed");
            --routing_;
            wake();
        });
    }
}

// A job ended when the store no longer has it or it is done (seen_jobs.hpp).
bool Scheduler::first_sight(SeenJobs& seen, std::uint64_t job_id) {
    try {
        return seen.first_sight(job_id, [this](std::uint64_t id) {
            auto job = store_.job(id);
            return !job || job->state == store::JobState::done;
        });
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        log::warning(std::string("cannot look up jobs to forget: ") + e.what());  // the next sweep tries again
        return true;  // the id was taken before the sweep
    }
}

}  // namespace mxlane::qrunner
