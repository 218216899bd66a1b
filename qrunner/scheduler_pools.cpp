// scheduler_pools: sending addresses (source_pools): which address a transaction goes from, warm-up caps, per-address shaping.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

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
                                            std::int64_t today, Clock::time_point now) {
    const std::size_t n = addresses.size();
    const std::size_t start = pool_turns_[pool]++ % n;
    const SourceAddress* held_back = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const SourceAddress* a = addresses[(start + i) % n];
        if (warmup_.room(a->address, towards, settings_->warmup, today) == 0) continue;
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
                                                                        std::vector<OwnedWork>& capped) {
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
        const SourceAddress* a = addresses.empty() ? nullptr : pick_source(addresses, pool, towards, today, now);
        if (!a) {
            capped.push_back(std::move(w));
            continue;
        }
        const std::int64_t room = warmup_.room(a->address, towards, settings_->warmup, today);
        auto& rcpts = w.work().rcpts;
        if (room < static_cast<std::int64_t>(rcpts.size())) {
            // The rest of the transaction goes from another address, or waits.
            Work rest = w.work();
            rest.rcpts.assign(rcpts.begin() + room, rcpts.end());
            rcpts.resize(static_cast<std::size_t>(room));
            todo.emplace_front(gate_, std::move(rest));
        }
        take_warmup(*a, towards, static_cast<std::int64_t>(rcpts.size()), today);
        by_address[a->address].push_back(std::move(w));
    }
    return by_address;
}

void Scheduler::route_from_pools(const std::string& key, const std::string& domain, std::vector<dns::MxHost> hosts,
                                 std::vector<OwnedWork> works) {
    std::vector<OwnedWork> capped;
    std::vector<std::pair<std::shared_ptr<Destination>, std::vector<OwnedWork>>> routes;
    std::string towards;
    {
        std::lock_guard lock(mu_);
        const Settings& s = *settings_;
        towards = source_towards(s, hosts);
        for (auto& [address, group] : assign_sources(std::move(works), towards, capped)) {
            auto d = destination_for(key + " src=" + address, domain, Path::direct, s, hosts, s.pools.find(address));
            d->port = s.smtp_port;
            routes.emplace_back(std::move(d), std::move(group));
        }
    }
    for (auto& [d, group] : routes) enqueue(d, std::move(group));
    if (capped.empty()) return;
    // Every address of the pool is at its warm-up cap towards this provider:
    // the mail waits for the next day (never a bounce, nor an attempt counted).
    const std::int64_t due = next_day_ms(store::now_ms());
    std::size_t n = 0;
    for (auto& w : capped) {
        n += w.work().rcpts.size();
        w.put_back(due);
    }
    log::info("warm-up: " + std::to_string(n) + " recipients for " + domain + " (" + towards +
              ") wait for the next day: every address of their pool is at its cap (warmup_schedule)");
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

}  // namespace mxlane::qrunner
