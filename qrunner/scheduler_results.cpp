// scheduler_results: what happens to each recipient after an attempt: log line, state, retry, relay hand-off.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "libshared/address.hpp"
#include "libshared/bounce_class.hpp"
#include "libshared/log.hpp"
#include "libshared/printable.hpp"
#include "qrunner/retry.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

// How often keyed jobs are looked at for the end of their job_idle_close.
constexpr auto kOpenJobPoll = std::chrono::seconds(1);
using store::RcptState;

namespace {

double seconds_between(std::int64_t from_ms, std::int64_t to_ms) {
    return to_ms > from_ms ? static_cast<double>(to_ms - from_ms) / 1000.0 : 0.0;
}

std::string status_word(RcptState s) {
    switch (s) {
        case RcptState::delivered:
        case RcptState::relayed: return "sent";
        case RcptState::bounced: return "bounced";
        case RcptState::expired: return "expired";
        default: return "deferred";
    }
}

// Only a dead address (no such mailbox, no such domain) is never tried again: a
// policy, authentication or content refusal says nothing about the address.
bool dead_address(BounceClass c) { return c == BounceClass::invalid_recipient || c == BounceClass::bad_domain; }

// The failure's class at the end of the log line's detail: " [class=rate-limit]".
std::string with_class(BounceClass c) {
    return c == BounceClass::none ? std::string() : " [class=" + std::string(class_name(c)) + "]";
}

}  // namespace

void Scheduler::conclude(const Work& w, const std::vector<Reply>& replies, const std::string& relay,
                         double connect_s, double transmit_s, const std::vector<std::string>& details) {
    const std::int64_t now = store::now_ms();
    auto s = settings();
    const bool hand_over = s->mode == Mode::combined && w.path == Path::direct && !stopping_;
    Work relay_work;
    std::vector<Event> events;
    std::vector<Metrics::Result> results;
    results.reserve(w.rcpts.size());
    for (std::size_t i = 0; i < w.rcpts.size(); ++i) {
        const store::Recipient& r = w.rcpts[i];
        const Reply& reply = i < replies.size() ? replies[i] : replies.back();
        const BounceClass cls = reply.positive() ? BounceClass::none : classify_reply(reply.code, reply.dsn(), reply.str());
        RcptState state = reply.positive()    ? (w.path == Path::relay ? RcptState::relayed : RcptState::delivered)
                          : reply.permanent() ? RcptState::bounced
                                              : RcptState::deferred;
        // reply_rules may defer a 5xx or bounce a 4xx for this one recipient.
        const ReplyRule* rule =
            reply.positive() || reply.synthetic ? nullptr : s->reply_rules->match(reply.str());
        if (rule && rule->scope == RuleScope::recipient && rule->action == RuleAction::defer)
            state = RcptState::deferred;
        if (rule && rule->scope == RuleScope::recipient && rule->action == RuleAction::bounce)
            state = RcptState::bounced;
        bool to_relay = state == RcptState::deferred && hand_over;
        if (state == RcptState::deferred && !to_relay && lifetime_over(r.queued_at, now, s->lifetime_ms))
            state = RcptState::expired;

        log::Delivery line;
        line.id = w.message ? w.message->job_token : store::format_job_id(r.job_id);
        line.to = r.address;
        line.relay = relay;
        line.before_queue = seconds_between(r.queued_at, w.claimed_ms);
        line.in_queue = std::max(0.0, seconds_between(w.claimed_ms, now) - connect_s - transmit_s);
        line.connect = connect_s;
        line.transmit = transmit_s;
        line.delay = seconds_between(r.queued_at, now);
        line.dsn = reply.dsn();
        line.status = status_word(state);
        line.detail = i < details.size() && !details[i].empty() ? details[i] : reply.synthetic ? reply.text : reply.str();
        if (to_relay) line.detail += "; handing over to the relay " + s->relay.label();
        if (state == RcptState::expired) line.detail = "message has been in the queue too long: " + line.detail;
        line.detail += with_class(cls);
        log::delivery(line);
        if (!to_relay) results.push_back({store::state_name(state), class_name(cls), seconds_between(w.claimed_ms, now)});
        if (events_on())
            events.push_back(event_of(r, std::string(store::state_name(state)), class_name(cls), line.dsn,
                                      reply.synthetic ? reply.text : reply.str(), relay == "none" ? "" : relay, now,
                                      w.message ? &w.message->meta.field_names : nullptr));
        if (!reply.positive()) job_failure(r, reply, rule, cls, *s);

        if (to_relay) {
            relay_work.rcpts.push_back(r);
            continue;
        }
        record(r, state, reply, cls, relay, w.path, now);
    }
    metrics_.add(results);
    write_events(events);
    if (relay_work.rcpts.empty()) return;
    relay_work.message = w.message;
    relay_work.domain = w.domain;
    relay_work.claimed = w.claimed;
    relay_work.claimed_ms = w.claimed_ms;
    ++routing_;
    std::vector<OwnedWork> works;
    works.emplace_back(gate_, std::move(relay_work));
    asio::co_spawn(io_, route_relay(std::move(works)), [this](std::exception_ptr e) {
        if (e) log::error("relay hand-over failed");
        --routing_;
        wake();
    });
}

void Scheduler::record(const store::Recipient& r, RcptState state, const Reply& reply, BounceClass cls,
                       const std::string& relay, Path path, std::int64_t now) {
    store::Outcome o;
    o.job_id = r.job_id;
    o.seq = r.seq;
    o.state = state;
    o.attempt_time = now;
    o.reply_code = reply.code;
    o.dsn = reply.dsn();
    o.reply_text = reply.str();
    o.host = relay == "none" ? std::string() : relay;
    o.path = path == Path::relay ? "relay" : "direct";
    if (state == RcptState::deferred) {
        std::uniform_real_distribution<double> spread(0.0, 1.0);
        double x;
        {
            std::lock_guard lock(mu_);
            x = spread(rng_);
        }
        o.next_attempt = next_attempt_ms(settings()->retry_schedule, r.attempts + 1, now, x);
    }
    o.suppress = state == RcptState::bounced && dead_address(cls);
    // Noted before the result is queued, so that the commit that holds it finds the note.
    if ((state == RcptState::bounced || state == RcptState::expired) && settings()->notify == NotifyMode::each)
        notifier_.failed(r.job_id, r.seq);
    writer_.add(std::move(o));
}

void Scheduler::settle(const store::Claim& claim) {
    const bool each = settings()->notify == NotifyMode::each;
    std::vector<store::Outcome> finals;
    for (const auto* list : {&claim.expired, &claim.suppressed})
        for (const auto& r : *list) {
            store::Outcome o;
            o.job_id = r.job_id;
            o.seq = r.seq;
            o.state = r.state;
            o.count_attempt = false;
            finals.push_back(std::move(o));
            if (each && r.state == RcptState::expired) notifier_.failed(r.job_id, r.seq);
        }
    if (finals.empty()) return;
    outstanding_ += finals.size();
    writer_.add(std::move(finals));
}

std::int64_t Scheduler::notify_due() const {
    const std::int64_t now = store::now_ms();
    return once_ ? std::min(now, run_start_ms_.load()) : now;
}

std::string Scheduler::job_name(std::uint64_t job_id) {
    {
        std::lock_guard lock(mu_);
        if (auto it = job_names_.find(job_id); it != job_names_.end()) return it->second;
    }
    std::string name;
    try {
        if (auto job = store_.job(job_id)) name = job->name;
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
    }
    std::lock_guard lock(mu_);
    return job_names_.try_emplace(job_id, name).first->second;
}

Event Scheduler::event_of(const store::Recipient& r, const std::string& type, std::string_view cls,
                          const std::string& dsn, const std::string& reply, const std::string& host, std::int64_t now,
                          const std::vector<std::string>* field_names) {
    Event e;
    e.type = type;
    e.time_ms = now;
    e.job = store::format_job_id(r.job_id);
    e.job_name = job_name(r.job_id);
    e.recipient = r.address;
    e.dsn = dsn;
    e.cls = cls;
    e.reply = reply;
    e.host = host;
    const auto& wanted = settings()->event_fields;
    if (wanted.empty()) return e;
    std::vector<std::string> loaded;
    if (!field_names) {  // expired or suppressed at the claim: the message's columns from the store
        try {
            if (auto m = store_.message(r.job_id, r.message_id)) loaded = m->field_names;
        } catch (const std::exception& ex) {
            store::fatal_if_panic(ex);
        }
        field_names = &loaded;
    }
    e.fields = event_field_values(wanted, *field_names, r.fields);
    return e;
}

void Scheduler::recipient_event(const store::Recipient& r, const std::string& type) {
    if (events_on()) write_events({event_of(r, type, "", "", "", "", store::now_ms())});
}

void Scheduler::write_events(const std::vector<Event>& events) {
    if (events.empty() || !events_on()) return;
    const std::string lines = event_lines(events);
    events_.write(lines);
    if (spool_) spool_->append(lines);
}

void Scheduler::reopen_event_log(const Settings& next) {
    const std::string event_log = next.cfg.get("event_log");
    if (event_log != settings()->cfg.get("event_log")) {
        try {
            events_.open(event_log);
        } catch (const std::exception& e) {
            log::warning("event_log not changed: cannot open " + std::string(e.what()));
        }
    } else if (std::string why; !events_.reopen(&why)) {
        log::warning("event_log not reopened, still writing the old file: " + why);
    }
}

void Scheduler::job_failure(const store::Recipient& r, const Reply& reply, const ReplyRule* rule, BounceClass cls,
                            const Settings& s) {
    if (rule && rule->action == RuleAction::hold) {
        hold_job(r.job_id, "reply_rules " + rule->where + " matched \"" + reply.str() + "\"");
        return;
    }
    if (s.auth_failure_hold <= 0 || cls != BounceClass::auth) return;
    int failures = 0;
    {
        std::lock_guard lock(mu_);
        failures = ++auth_failures_[r.job_id];
    }
    if (failures != s.auth_failure_hold) return;
    hold_job(r.job_id, std::to_string(failures) +
                           " delivery attempts failed the receivers' sender authentication (SPF, DKIM, DMARC), last: \"" +
                           reply.str() + "\"; fix the sending domain's DNS, then mxlanectl release " +
                           store::format_job_id(r.job_id));
}

void Scheduler::hold_job(std::uint64_t job_id, const std::string& reason) {
    const std::string job = store::format_job_id(job_id);
    try {
        auto j = store_.job(job_id);
        if (!j || j->state == store::JobState::held || j->state == store::JobState::done) return;
        store_.hold(job_id, reason);
        log::warning(job + ": held: " + printable(reason));
        if (events_on()) {
            Event e;
            e.type = "job";
            e.time_ms = store::now_ms();
            e.job = job;
            e.job_name = j->name;
            e.state = "held";
            write_events({e});
        }
        // Nothing more of it goes out: its waiting transactions go back now, not at the next poll.
        std::lock_guard lock(mu_);
        held_jobs_.insert(job_id);
        for (auto& [key, d] : destinations_) drop_held(*d);
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        log::error(job + ": cannot hold the job (" + std::string(e.what()) + "): " + printable(reason));
    }
}

void Scheduler::log_final(const store::Recipient& r, const std::string& status, const std::string& dsn,
                          const std::string& detail, std::int64_t now) {
    log::Delivery line;
    line.id = store::format_job_id(r.job_id);
    line.to = r.address;
    line.relay = "none";
    line.delay = seconds_between(r.queued_at, now);
    line.before_queue = line.delay;
    line.dsn = dsn;
    line.status = status;
    line.detail = detail;
    log::delivery(line);
    metrics_.add({{status, store::failure_class(r)}});
    if (events_on())
        write_events({event_of(r, status, store::failure_class(r), dsn, r.reply_text.empty() ? detail : r.reply_text,
                                r.host, now)});
}

// On the store thread, after a commit.
void Scheduler::written(std::size_t n, const std::vector<std::uint64_t>& finished_jobs) {
    for (auto id : finished_jobs) {
        auto job = store_.job(id);
        if (!job) continue;
        std::string counts;
        for (std::size_t i = 0; i < store::kStateCount; ++i)
            if (job->counts[i])
                counts += ", " + std::string(store::state_name(static_cast<RcptState>(i))) + "=" +
                          std::to_string(job->counts[i]);
        log::info(store::format_job_id(id) + ": job done: recipients=" + std::to_string(job->total()) + counts);
        if (events_on()) {
            Event e;
            e.type = "job";
            e.time_ms = store::now_ms();
            e.job = store::format_job_id(id);
            e.job_name = job->name;
            e.state = "done";
            write_events({e});
        }
    }
    // Before the results count as written: a --once run ends only once the
    // notifications they lead to are in the queue (and it sends them too).
    notifier_.after_commit(*settings(), finished_jobs, notify_due());
    outstanding_ -= n;
    wake();
}

// ---------------------------------------------------------------- closing keyed jobs

void Scheduler::close_idle_jobs() {
    auto done = store_.close_idle_jobs(store::now_ms());
    if (!done.empty()) written(0, done);
}

asio::awaitable<void> Scheduler::watch_open_jobs() {
    asio::steady_timer timer(control_);
    while (!stopping_ && !ended_) {
        try {
            co_await asio::co_spawn(
                store_thread_.get_executor(), [this]() -> asio::awaitable<void> {
                    close_idle_jobs();
                    co_return;
                },
                asio::use_awaitable);
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error(std::string("cannot close idle jobs: ") + e.what());
        }
        timer.expires_after(kOpenJobPoll);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace mxlane::qrunner
