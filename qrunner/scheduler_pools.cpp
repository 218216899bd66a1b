// scheduler_pools: sending addresses (source_pools): which address a transaction goes from, warm-up caps, per-address shaping.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

// With the counts shared, mail over the cap looks again this soon rather than
// at midnight: a batch of another host may have reserved room it then gave back.
constexpr std::int64_t kSharedCapRecheckMs = 5 * 60 * 1000;

}  // namespace

std::string source_towards(const Settings& s, const std::vector<dns::MxHost>& hosts) {
    if (hosts.empty()) return "";
    if (const auto* entry = s.policy.provider_for(hosts.front().name)) return entry->pattern;
    std::string host = to_lower(hosts.front().name);
    if (host.ends_with('.')) host.pop_back();
    return "mx:" + host;
}

std::string source_shaping_name(const std::string& address, const std::string& towards) {
    return "src:" + address + "/" + towards;
}

void Scheduler::pool_at_load(MessageData& m, const Settings& s) {
    if (s.pools.addresses.empty() && m.meta.pool.empty()) return;
    if (!s.pool_addresses(m.meta.pool).empty()) return;
    const std::string file = s.cfg.get("source_pools");
    const std::string why = "unknown pool " + (m.meta.pool.empty() ? s.default_pool : m.meta.pool) +
                            (file.empty() ? " (source_pools is not set)" : " (not in source_pools " + file + ")");
    m.pool_hold = true;
    try {
        hold_job(m.meta.job_id, why);
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        m.pool_hold = false;  // deferred instead: not held, it would only come back due
        m.sign_error = "cannot hold the job for its unknown pool: " + std::string(e.what());
        log::error(m.job_token + ": " + m.sign_error);
    }
}

void Scheduler::shape_source(Destination& d, const Shaping& limits, Clock::time_point now) {
    if (!d.source) {
        d.by_source.reset();
        return;
    }
    const std::string name = source_shaping_name(d.source->address, source_towards(*settings_, d.hosts));
    if (d.by_source && d.by_source->name != name && d.active() > 0) return;  // moves once its connections closed
    auto& b = sources_[name];
    if (!b) {
        b = std::make_shared<Shaping>();
        b->name = name;
        apply_suspension(*b, now);
        apply_throttle(*b, now);
    }
    // Only what a rule of scope source sets (a throttle, a suspension) holds it
    // beyond the limits of its destination and provider.
    b->concurrency.configure(limits.concurrency.configured());
    b->backoff_pause = limits.backoff_pause;
    if (b->throttle_over(now)) b->throttled_until.reset();
    if (!b->rethrottle(now, share_divisor())) b->messages.configure(0, std::chrono::hours(1), now);
    d.by_source = b;
}

const SourceAddress* Scheduler::pick_source(const std::vector<const SourceAddress*>& addresses,
                                            const std::string& pool, const std::string& towards,
                                            std::int64_t today, Clock::time_point now,
                                            const WarmupAllowance* allowance) {
    const std::size_t n = addresses.size();
    const std::size_t start = pool_turns_[pool]++ % n;
    const SourceAddress* held_back = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const SourceAddress* a = addresses[(start + i) % n];
        if (warmup_room(*a, towards, today, allowance) == 0) continue;
        auto it = sources_.find(source_shaping_name(a->address, towards));
        // An address throttled or suspended towards this provider takes new work
        // only when every other one of the pool is at its cap or held back too.
        if (it != sources_.end() && (it->second->holding(now) || it->second->throttled(now))) {
            if (!held_back) held_back = a;
            continue;
        }
        return a;
    }
    return held_back;
}

void Scheduler::take_warmup(const SourceAddress& a, const std::string& towards, std::int64_t n, std::int64_t today) {
    auto taken = warmup_.take(a.address, towards, n, today);
    store::QueueStore::WarmupCount c{a.address, towards, taken.count.day, taken.count.sent};
    asio::post(store_thread_, [this, c, first = taken.first_day] {
        try {
            if (first) store_.set_warmup_first_day(c.address, *first);
            store_.set_warmup_count(c);
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error("cannot record the warm-up count of " + c.address + " in the queue: " + e.what());
        }
    });
}

std::map<std::string, std::vector<OwnedWork>> Scheduler::assign_sources(std::vector<OwnedWork> works,
                                                                        const std::string& towards,
                                                                        std::vector<OwnedWork>& capped,
                                                                        WarmupAllowance* allowance) {
    std::map<std::string, std::vector<OwnedWork>> by_address;
    const std::int64_t wall = store::now_ms();
    const std::int64_t today = epoch_day(wall);
    const auto now = Clock::now();
    std::deque<OwnedWork> todo(std::make_move_iterator(works.begin()), std::make_move_iterator(works.end()));
    while (!todo.empty()) {
        OwnedWork w = std::move(todo.front());
        todo.pop_front();
        const std::string& pool = w.work().message->meta.pool;
        const auto addresses = settings_->pool_addresses(pool);
        const SourceAddress* a =
            addresses.empty() ? nullptr : pick_source(addresses, pool, towards, today, now, allowance);
        if (!a) {
            capped.push_back(std::move(w));
            continue;
        }
        const std::int64_t room = warmup_room(*a, towards, today, allowance);
        auto& rcpts = w.work().rcpts;
        if (room < static_cast<std::int64_t>(rcpts.size())) {
            // The rest of the transaction goes from another address, or waits.
            Work rest = w.work();
            rest.rcpts.assign(rcpts.begin() + room, rcpts.end());
            rcpts.resize(static_cast<std::size_t>(room));
            todo.emplace_front(gate_, std::move(rest));
        }
        take_warmup(*a, towards, static_cast<std::int64_t>(rcpts.size()), today);
        if (allowance) allowance->used[a->address] += static_cast<std::int64_t>(rcpts.size());
        by_address[a->address].push_back(std::move(w));
    }
    return by_address;
}

std::int64_t Scheduler::warmup_room(const SourceAddress& a, const std::string& towards, std::int64_t today,
                                    const WarmupAllowance* allowance) const {
    const std::int64_t local = warmup_.room(a.address, towards, settings_->warmup, today);
    if (!allowance) return local;
    return allowance_room(*allowance, a.address, local, settings_->warmup.cap(warmup_.day(a.address, today)));
}

asio::awaitable<WarmupAllowance> Scheduler::reserve_warmup(const Settings& s, const std::string& towards,
                                                           std::int64_t today, const std::vector<OwnedWork>& works) {
    SharedWarmup::Ask ask;
    ask.provider = towards;
    ask.today = today;
    ask.caps = s.warmup.caps;
    ask.hosts = shared_->hosts_seen();
    {
        std::lock_guard lock(mu_);
        for (const auto& w : works) {
            ask.n += static_cast<std::int64_t>(w.work().rcpts.size());
            for (const SourceAddress* a : s.pool_addresses(w.work().message->meta.pool))
                ask.first_days.emplace(a->address, warmup_.first_day(a->address).value_or(today));
        }
    }
    WarmupAllowance allowance = co_await asio::async_initiate<decltype(asio::use_awaitable), void(WarmupAllowance)>(
        [this, &ask](auto handler) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            shared_warmup_->reserve(std::move(ask), [h](WarmupAllowance a) {
                auto ex = asio::get_associated_executor(*h);
                asio::post(ex, [h, a = std::move(a)]() mutable { std::move(*h)(std::move(a)); });
            });
        },
        asio::use_awaitable);
    std::lock_guard lock(mu_);
    for (const auto& [address, r] : allowance.by_address) {
        if (warmup_.first_day(address) == r.first_day) continue;
        warmup_.set_first_day(address, r.first_day);  // another host used it first: its warm-up goes on
        asio::post(store_thread_, [this, address, day = r.first_day] {
            try {
                store_.set_warmup_first_day(address, day);
            } catch (const std::exception& e) {
                store::fatal_if_panic(e);
                log::error("cannot record the warm-up first day of " + address + " in the queue: " + e.what());
            }
        });
    }
    co_return allowance;
}

asio::awaitable<void> Scheduler::route_from_pools(const std::string& key, const std::string& domain,
                                                  std::vector<dns::MxHost> hosts, std::vector<OwnedWork> works) {
    const auto settings_now = settings();
    const std::string towards = source_towards(*settings_now, hosts);
    const std::int64_t today = epoch_day(store::now_ms());
    std::optional<WarmupAllowance> allowance;
    if (shared_warmup_ && !settings_now->warmup.caps.empty())
        allowance = co_await reserve_warmup(*settings_now, towards, today, works);
    std::vector<OwnedWork> capped;
    std::vector<std::pair<std::shared_ptr<Destination>, std::vector<OwnedWork>>> routes;
    {
        std::lock_guard lock(mu_);
        const Settings& s = *settings_;
        for (auto& [address, group] :
             assign_sources(std::move(works), towards, capped, allowance ? &*allowance : nullptr)) {
            auto d = destination_for(key + " src=" + address, domain, Path::direct, s, hosts, s.pools.find(address));
            d->port = s.smtp_port;
            routes.emplace_back(std::move(d), std::move(group));
        }
    }
    if (allowance) shared_warmup_->give_back(*allowance, towards, today);
    for (auto& [d, group] : routes) enqueue(d, std::move(group));
    if (capped.empty()) co_return;
    // Every address of the pool is at its warm-up cap towards this provider:
    // the mail waits for the next day (never a bounce, nor an attempt counted).
    // Shared through Redis, it looks again sooner: another host may give back
    // what it reserved and did not send.
    const std::int64_t now = store::now_ms();
    std::int64_t due = next_day_ms(now);
    if (allowance && allowance->shared) due = std::min(due, now + kSharedCapRecheckMs);
    std::size_t n = 0;
    for (auto& w : capped) {
        n += w.work().rcpts.size();
        w.put_back(due);
    }
    log::info("warm-up: " + std::to_string(n) + " recipients for " + domain + " (" + towards + ") wait for the " +
              (due == next_day_ms(now) ? "next day" : "cap to have room") +
              ": every address of their pool is at its cap (warmup_schedule" +
              (allowance && allowance->shared ? ", counted across hosts)" : ")"));
}

asio::awaitable<void> Scheduler::read_warmup() {
    const bool counts = !warmup_read_;
    try {
        auto [first, list] = co_await asio::co_spawn(
            store_thread_.get_executor(),
            [this, counts]() -> asio::awaitable<
                                 std::pair<std::map<std::string, std::int64_t>, std::vector<store::QueueStore::WarmupCount>>> {
                co_return std::make_pair(store_.warmup_first_days(),
                                         counts ? store_.warmup_counts() : std::vector<store::QueueStore::WarmupCount>{});
            },
            asio::use_awaitable);
        std::lock_guard lock(mu_);
        warmup_.load_first_days(std::move(first));
        for (const auto& c : list) warmup_.load_count(c.address, c.provider, {c.day, c.sent});
        warmup_read_ = true;
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        log::error(std::string("cannot read the warm-up of the sending addresses from the queue: ") + e.what());
    }
}

json::array Scheduler::source_rows() const {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    json::array rows;
    for (const auto& [name, b] : sources_) {
        const auto slash = name.find('/');  // "src:ADDRESS/mx:...": providers hold no '/'
        if (!name.starts_with("src:") || slash == std::string::npos) continue;
        const bool throttled = b->throttled(now);
        json::object r;
        r["address"] = name.substr(4, slash - 4);
        r["provider"] = name.substr(slash + 1);
        r["connections"] = b->active;
        r["throttle_per_hour"] = throttled ? static_cast<std::int64_t>(b->messages.per_second() * 3600 + 0.5) : 0;
        r["throttled_until"] = throttled ? wall_ms(*b->throttled_until, now) : 0;
        r["paused_until"] = b->holding(now) ? wall_ms(b->holds_until(now), now) : 0;
        r["reason"] = throttled || b->holding(now) ? b->reason : "";
        rows.push_back(std::move(r));
    }
    return rows;
}

}  // namespace mxlane::qrunner
