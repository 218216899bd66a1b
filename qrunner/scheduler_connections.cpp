// scheduler_connections: routing to destinations (MX or relay) and their connections: limits, rates, backoff, pauses.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "qrunner/delivery.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

// Work that a destination's rate or backoff holds back waits in the
// destination for at most this long; what would wait longer goes back to the
// store, due when it may go, so that memory stays bounded and the claim limit
// is not spent on one slow destination.
constexpr auto kHoldLimit = std::chrono::seconds(60);
// A connection waits this long at most, idle, for max_messages_per_hour to
// allow its next message (servers wait 5 minutes for a command, RFC 5321
// 4.5.3.2.7; we free their slot sooner), and rechecks at least every second.
constexpr auto kIdleLimit = std::chrono::seconds(10);

std::string seconds_text(Clock::duration d) {
    auto rounded = std::chrono::round<std::chrono::seconds>(d);
    return std::to_string(rounded.count()) + "s";
}

// "1 message/60s" of a throttle rate.
std::string rate_text(double per_second) {
    return "1 message/" + seconds_text(std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(per_second > 0 ? 1 / per_second : 0)));
}

}  // namespace

// ---------------------------------------------------------------- routing

asio::awaitable<void> Scheduler::route_direct(std::string domain, std::vector<OwnedWork> works) {
    dns::MxResult mx = co_await resolver_.mx_lookup(domain);
    if (mx.status != dns::Status::ok) {
        int code = mx.status == dns::Status::retry ? 451 : 550;
        fail_route(works, Reply::make(code, mx.dsn, mx.error));
        co_return;
    }
    auto s = settings();
    // Domains that share MX hosts share connections, but only under one TLS
    // policy: a domain whose destination_policy asks for another level (or CA
    // file) gets a destination of its own, so its mail never rides a
    // connection opened under another domain's policy.
    std::string key = "mx:" + mx.destination_key();
    const std::string level = s->policy.get(domain, "smtp_tls_security_level", s->cfg);
    const std::string ca_file = s->policy.get(domain, "smtp_tls_CAfile", s->cfg);
    if (level != s->cfg.get("smtp_tls_security_level") || ca_file != s->cfg.get("smtp_tls_CAfile"))
        key += " tls=" + level + (ca_file.empty() ? "" : " ca=" + ca_file);
    if (!s->pools.addresses.empty()) {
        co_await route_from_pools(key, domain, std::move(mx.hosts), std::move(works));
        co_return;
    }
    std::shared_ptr<Destination> d;
    {
        std::lock_guard lock(mu_);
        d = destination_for(key, domain, Path::direct, *s, mx.hosts);
        d->port = s->smtp_port;
    }
    enqueue(d, std::move(works));
}

asio::awaitable<void> Scheduler::route_relay(std::vector<OwnedWork> works) {
    auto s = settings();
    for (auto& w : works) w.work().path = Path::relay;
    // Not `cond ? co_await a : co_await b`: GCC 12 miscompiles co_await inside a conditional
    // expression (the result was garbage, and every relay connection ended in std::terminate).
    dns::MxResult mx;
    if (s->relay.mx_lookup) mx = co_await resolver_.mx_lookup(s->relay.host);
    else mx = co_await resolver_.host_lookup(s->relay.host);
    if (mx.status != dns::Status::ok) {
        // The relay's own name does not resolve: a configuration matter, never a bounce.
        fail_route(works, Reply::make(451, "4.4.3", "relay_host " + s->relay.label() + ": " + mx.error));
        co_return;
    }
    std::string label = s->relay.label();
    std::shared_ptr<Destination> d;
    {
        std::lock_guard lock(mu_);
        d = destination_for("relay:" + label, label, Path::relay, *s, mx.hosts);
        d->port = s->relay.port;
    }
    enqueue(d, std::move(works));
}

void Scheduler::fail_route(std::vector<OwnedWork>& works, const Reply& why) {
    for (auto& w : works) w.conclude_all(why, "none");
}

void Scheduler::enqueue(const std::shared_ptr<Destination>& d, std::vector<OwnedWork> works) {
    Reply paused;
    std::string relay;
    Starts starts;
    {
        std::lock_guard lock(mu_);
        if (!d->paused(Clock::now()) && !stopping_) {
            for (auto& w : works) d->enqueue(std::move(w));
            collect_starts(d, starts);
            works.clear();
        } else {
            paused = d->pause_reply();
            relay = d->pause_relay();
        }
    }
    spawn(starts);
    if (works.empty()) return;
    if (stopping_) {
        for (auto& w : works) w.put_back(store::now_ms());
        return;
    }
    for (auto& w : works) w.conclude_all(paused, relay);
}

// ---------------------------------------------------------------- connections

std::shared_ptr<Destination> Scheduler::destination_for(const std::string& key, const std::string& policy_name,
                                                        Path path, const Settings& s, std::vector<dns::MxHost> hosts,
                                                        const SourceAddress* source) {
    auto& slot = destinations_[key];
    const bool made = !slot;
    if (made) {
        slot = std::make_shared<Destination>(io_.get_executor());
        slot->key = key;
        slot->policy_name = policy_name;
        slot->path = path;
        if (source) slot->source = *source;
    }
    const bool other_best = slot->hosts.empty() || hosts.empty() || slot->hosts.front().name != hosts.front().name;
    slot->hosts = std::move(hosts);
    if (made || other_best) {
        const auto now = Clock::now();
        shape(*slot, s, now);
        apply_suspension(*slot->own, now);
        apply_throttle(*slot->own, now);
    }
    return slot;
}

void Scheduler::shape(Destination& d, const Settings& s, Clock::time_point now) {
    // The limits of a policy line: a domain's own (by name), or a provider's (its mx: line).
    // shared_state: while Redis does not answer, this host's share of each rate and of the concurrency.
    const std::int64_t hosts = share_divisor();
    auto share = [&](std::int64_t rate) { return rate > 0 ? std::max<std::int64_t>(1, rate / hosts) : rate; };
    auto configure = [&](Shaping& sh, auto&& limit) {
        sh.shared = shared_.get();
        sh.leases = shared_leases_.get();
        sh.concurrency.configure(static_cast<int>(share(limit("destination_concurrency"))));
        sh.messages_per_connection = static_cast<int>(limit("max_messages_per_connection"));
        if (sh.throttle_over(now)) sh.throttled_until.reset();
        if (!sh.rethrottle(now, hosts))
            sh.messages.configure(share(limit("max_messages_per_hour")), std::chrono::hours(1), now);
        sh.connections.configure(share(limit("max_connections_per_minute")), std::chrono::minutes(1), now);
        sh.backoff_pause = std::chrono::seconds(limit("destination_backoff"));
    };
    d.own->name = to_lower(d.policy_name);
    configure(*d.own, [&](const char* name) { return s.limit(d.policy_name, name); });
    const DestinationPolicy::Entry* entry =
        d.path == Path::direct && !d.hosts.empty() ? s.policy.provider_for(d.hosts.front().name) : nullptr;
    // Open connections hold a slot in the provider they opened under: d moves
    // to another (a reload, another best MX host) once they have closed.
    const bool moves = (entry ? entry->pattern : "") != (d.provider ? d.provider->name : "");
    if (moves && d.active() > 0) return;
    if (!entry) {
        d.provider.reset();
        shape_source(d, *d.own, now);
        return;
    }
    auto& p = providers_[entry->pattern];
    if (!p) {
        p = std::make_shared<Shaping>();
        p->name = entry->pattern;
        p->provider = true;
        apply_suspension(*p, now);
        apply_throttle(*p, now);
    }
    configure(*p, [&](const char* name) { return s.policy.integer(*entry, name, s.cfg); });
    d.provider = p;
    shape_source(d, *p, now);
}

void Scheduler::collect_starts(const std::shared_ptr<Destination>& d, Starts& starts) {
    const auto now = Clock::now();
    if (d->paused(now)) return;
    bool throttle_over = false;  // a reply_rules throttle ended
    d->each_shaping([&](const Shaping& sh) { throttle_over = throttle_over || sh.throttle_over(now); });
    if (throttle_over) shape(*d, *settings_, now);
    // A connection idle for the message rate takes the next token itself.
    drop_held(*d);
    while (d->has_waiting() && !stopping_ && connections_ < settings_->max_connections && d->may_open(now)) {
        d->opened(now);
        starts.emplace_back(d, d->take_next());
        ++connections_;
    }
    hold_or_park(d, now);
}

void Scheduler::hold_or_park(const std::shared_ptr<Destination>& d, Clock::time_point now) {
    if (!d->has_waiting() || stopping_) return;
    const Clock::time_point resume = d->holds_until(now);
    // When the i-th waiting transaction (from 0) may go, as far as the rate and the pause tell.
    auto ready = [&](std::size_t i) {
        auto t = std::max(resume, d->message_ready_at(now, static_cast<double>(i + 1 + d->idle())));
        return d->active() == 0 ? std::max(t, d->connection_ready_at(now)) : t;
    };
    std::size_t parked = 0;
    Clock::time_point latest = now;
    while (d->has_waiting() && ready(d->waiting() - 1) - now > kHoldLimit) {
        const auto when = ready(d->waiting() - 1);
        if (parked == 0) latest = when;
        d->take_last().put_back(wall_ms(when, now));
        ++parked;
    }
    if (parked)
        notes_.push_back("destination " + d->policy_name + " (" + d->key + "): " + std::to_string(parked) +
                  " transactions back to the queue, due within " + seconds_text(latest - now) +
                  (d->backing_off(now) ? " (backing off)" : " (max_messages_per_hour)"));
    if (!d->has_waiting()) return;
    auto next = std::max({resume, d->message_ready_at(now), d->connection_ready_at(now)});
    // Only then a lease (shared_state), so that none is asked for that could not be used.
    if (next <= now && connections_ < settings_->max_connections && d->may_open_here(now))
        next = d->lease_ready_at(now);
    if (next > now) wake_at(d, next);
}

void Scheduler::wake_at(const std::shared_ptr<Destination>& d, Clock::time_point when) {
    if (d->wake_at && *d->wake_at <= when) return;  // an earlier wake-up is set
    d->wake_at = when;
    d->wake.expires_at(when);
    std::weak_ptr<Destination> weak = d;
    d->wake.async_wait([this, weak](boost::system::error_code ec) {
        if (ec) return;  // replaced by an earlier one
        auto d = weak.lock();
        if (!d) return;
        Starts starts;
        {
            std::lock_guard lock(mu_);
            d->wake_at.reset();
            collect_starts(d, starts);
        }
        spawn(starts);
    });
}

void Scheduler::put_back(const Work& w, std::int64_t due_ms) {
    for (const auto& r : w.rcpts) {
        store::Outcome o;
        o.job_id = r.job_id;
        o.seq = r.seq;
        o.state = r.state;
        o.next_attempt = due_ms;
        o.count_attempt = false;
        writer_.add(std::move(o));
    }
}

void Scheduler::collect_waiting(Starts& starts) {
    for (auto& [key, d] : destinations_)
        if (d->has_waiting()) collect_starts(d, starts);
}

void Scheduler::spawn(Starts& starts) {
    for (auto& [d, first] : starts)
        asio::co_spawn(io_, deliver(*this, d, std::move(first)),
                       [](std::exception_ptr e) { log_exception(e, "delivery connection failed"); });
    starts.clear();
    flush_notes();
}

Scheduler::Next Scheduler::take_work(Destination& d, int sent, bool waited) {
    std::lock_guard lock(mu_);
    if (waited) d.idle_ended();
    const auto now = Clock::now();
    drop_held(d);
    if (stopping_ || !d.has_waiting() || d.paused(now) || d.backing_off(now) || sent >= d.messages_per_connection())
        return {};
    if (!d.take_message(now)) {
        auto ready = d.message_ready_at(now);
        if (ready - now > kIdleLimit) return {};
        d.idle_started();
        return {OwnedWork(), std::min(ready, now + std::chrono::seconds(1))};
    }
    return {d.take_next(), std::nullopt};
}

void Scheduler::connection_done(const std::shared_ptr<Destination>& d) {
    Starts starts;
    {
        std::lock_guard lock(mu_);
        d->closed();
        --connections_;
        collect_waiting(starts);
    }
    spawn(starts);
    wake();
}

std::optional<ReplyRule> Scheduler::slowing_rule(const Reply& reply) const {
    auto s = settings();
    if (s->reply_rules->size() == 0) {
        std::lock_guard lock(mu_);
        if (!throttle_patterns_.matches(reply)) return std::nullopt;
        ReplyRule r;
        r.scope = RuleScope::destination;
        r.action = RuleAction::suspend;  // for destination_backoff (duration 0); the log names no rule
        return r;
    }
    if (reply.synthetic || reply.positive() || reply.code == 0) return std::nullopt;
    const ReplyRule* r = s->reply_rules->match(reply.str());
    if (!r || (r->action != RuleAction::suspend && r->action != RuleAction::throttle)) return std::nullopt;
    return *r;
}

void Scheduler::back_off(const std::shared_ptr<Destination>& d, const Reply& why) {
    const std::optional<ReplyRule> rule_for = slowing_rule(why);
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        const ReplyRule rule = rule_for.value_or(ReplyRule{});
        // A rule of scope provider slows the whole provider down when d has one;
        // one of scope source, d's sending address towards that provider (the
        // pool's other addresses go on); without source_pools the host has one
        // address, and that is the provider's.
        Shaping& sh = rule.scope == RuleScope::source ? (d->by_source ? *d->by_source : d->widest())
                      : rule.scope == RuleScope::provider ? d->widest()
                                                          : *d->own;
        const int before = sh.concurrency.limit();
        const bool throttle = rule.action == RuleAction::throttle;
        const Clock::duration pause = throttle ? Clock::duration::zero()
                                      : rule.duration.count() > 0 ? Clock::duration(rule.duration)
                                                                  : sh.backoff_pause;
        if (!sh.concurrency.throttled(now, pause)) return;
        sh.reason = why.str();
        if (throttle) throttle_here(sh, rule, now);
        else keep_suspension(sh.name, wall_ms(now + pause, now), sh.reason);
        const int after = sh.concurrency.limit();
        const std::string change = before == after ? "stays at " + std::to_string(before)
                                                   : std::to_string(before) + " -> " + std::to_string(after);
        const std::string source = rule.where.empty() ? "" : " (" + rule.where + ")";
        const std::string what = sh.provider               ? "provider " + sh.name + " (by destination " + d->policy_name + ")"
                                 : &sh == d->by_source.get() ? "sending address " + sh.name
                                                             : "destination " + d->policy_name + " (" + d->key + ")";
        notes_.push_back(what + " backing off after \"" + why.str() + "\"" + source + ": concurrency " + change +
                         (throttle ? ", at most " + rate_text(rule.per_second) + " for " + seconds_text(rule.duration)
                                   : ", paused for " + seconds_text(pause)));
        hold_or_park(d, now);
    }
    flush_notes();
}

void Scheduler::transaction_clean(const std::shared_ptr<Destination>& d) {
    Starts starts;
    {
        std::lock_guard lock(mu_);
        bool ramped = false;
        d->each_shaping([&](Shaping& sh) {
            const int before = sh.concurrency.limit();
            if (!sh.concurrency.clean()) return;
            ramped = true;
            notes_.push_back((sh.provider ? "provider " + sh.name : "destination " + d->policy_name + " (" + d->key + ")") +
                             " ramping up: concurrency " +
                             std::to_string(before) + " -> " + std::to_string(sh.concurrency.limit()) + " of " +
                             std::to_string(sh.concurrency.configured()) + " after " +
                             std::to_string(AdaptiveConcurrency::kRampAfter) + " clean transactions");
        });
        if (!ramped) return;
        if (d->provider) collect_waiting(starts);  // the provider's other destinations may have room now
        else collect_starts(d, starts);
    }
    spawn(starts);
}

void Scheduler::destination_unreachable(const std::shared_ptr<Destination>& d, OwnedWork first, const Reply& why,
                                        const std::string& relay) {
    std::vector<OwnedWork> failed;
    failed.push_back(std::move(first));
    {
        std::lock_guard lock(mu_);
        const auto& retry = settings_->retry_schedule;
        auto pause = std::chrono::seconds(retry.empty() ? 300 : retry.front());
        if (why.temporary()) {
            d->pause(Clock::now() + pause, why, relay);
            notes_.push_back("destination " + d->key + " paused for " + std::to_string(pause.count()) +
                             "s: every host failed: " + why.text);
        }
        for (auto& w : d->take_all()) failed.push_back(std::move(w));
    }
    flush_notes();
    for (auto& w : failed) w.conclude_all(why, relay);
}

void Scheduler::flush_notes() {
    std::vector<std::string> notes;
    {
        std::lock_guard lock(mu_);
        notes.swap(notes_);
    }
    for (const auto& n : notes) log::info(n);
}

void Scheduler::drop_held(Destination& d) {
    if (held_jobs_.empty()) return;
    const std::int64_t now = store::now_ms();
    d.take_matching(
        [&](const OwnedWork& w) { return !w.work().rcpts.empty() && held_jobs_.contains(w.work().rcpts.front().job_id); },
        [&](OwnedWork& w) { w.put_back(now); });  // the store makes it held
}

}  // namespace mxlane::qrunner
