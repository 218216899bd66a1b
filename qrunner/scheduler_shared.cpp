// scheduler_shared: the scheduler's part in shared_state: starting the Redis connections, heartbeats, new shares.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fstream>

#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"
#include "qrunner/shared_state_redis.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

constexpr auto kBeat = std::chrono::seconds(1);
constexpr auto kFirstBeat = std::chrono::seconds(3);
constexpr auto kFirstBeatStep = std::chrono::milliseconds(50);

// queue_directory/shared_hosts: the hosts last seen, so that a start while
// Redis is away already goes on at this host's share.
std::string hosts_file(const Settings& s) { return s.queue_directory + "/shared_hosts"; }

int read_hosts(const Settings& s) {
    std::ifstream in(hosts_file(s));
    int n = 1;
    return in >> n ? std::max(1, n) : 1;
}

}  // namespace

void Scheduler::start_shared() {
    const Settings& s = *settings_;
    if (s.cfg.get("shared_state").empty()) return;
    const RedisUrl url = shared_state_url(s.cfg);
    const auto timeout = std::chrono::milliseconds(s.cfg.seconds("shared_state_timeout") * 1000);
    redis_ = std::make_unique<RedisClient>(io_.get_executor(), url, timeout);
    redis_sub_ = std::make_unique<RedisClient>(io_.get_executor(), url, timeout);
    shared_ = std::make_unique<SharedState>(redis_backend(*redis_), s.myhostname, url.label(), read_hosts(s));
    shared_warmup_ = std::make_unique<SharedWarmup>(redis_warmup_backend(*redis_), url.label());
    shared_leases_ = std::make_unique<SharedLeases>(redis_lease_backend(*redis_), *shared_, s.myhostname);
    shared_->on_reshape([this] { reshape_all(); });
    auto retry_waiting = [this] {
        Starts starts;
        {
            std::lock_guard lock(mu_);
            collect_waiting(starts);
        }
        spawn(starts);
    };
    shared_->on_wake(retry_waiting);
    shared_leases_->on_wake(retry_waiting);
    redis_->on_state([this](bool up) {
        if (!up) shared_->lost("connection lost");
    });
    shared_suppressions_ =
        std::make_unique<SharedList>("mxlane:suppressed", suppression_list(store_), *redis_, *redis_sub_, store_thread_);
    shared_suspensions_ =
        std::make_unique<SharedList>("mxlane:suspended", suspension_list(store_), *redis_, *redis_sub_, store_thread_);
    shared_throttles_ =
        std::make_unique<SharedList>("mxlane:throttled", throttle_list(throttles_), *redis_, *redis_sub_, store_thread_);
    redis_sub_->on_state([this](bool up) {
        if (!up) return;
        shared_suppressions_->reconnected();
        shared_suspensions_->reconnected();
        shared_throttles_->reconnected();
    });
    redis_->start();
    redis_sub_->start();
    log::info("shared_state: " + url.label() + " as host " + s.myhostname + " (until it answers, 1/" +
              std::to_string(shared_->divisor()) + " of every limit)");
}

void Scheduler::reshape_all() {
    Starts starts;
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        for (auto& [key, d] : destinations_) shape(*d, *settings_, now);
        collect_waiting(starts);
    }
    spawn(starts);
}

boost::json::object Scheduler::in_flight() const {
    std::lock_guard lock(mu_);
    boost::json::object counts;
    for (const auto& [key, d] : destinations_)
        if (d->own->active > 0)  // several destinations may go by one name (TLS policies, sending addresses)
            counts[d->own->name] = (counts.contains(d->own->name) ? counts[d->own->name].to_number<int>() : 0) +
                                   d->own->active;
    for (const auto& [name, p] : providers_)
        if (p->active > 0) counts[p->name] = p->active;
    return counts;
}

asio::awaitable<void> Scheduler::beat_shared() {
    asio::steady_timer timer(control_);
    // The connection is being made: the first heartbeat waits for it a little
    // (kFirstBeat at most) rather than report Redis away at every start.
    for (auto waited = Clock::duration::zero(); !redis_->up() && waited < kFirstBeat; waited += kFirstBeatStep) {
        timer.expires_after(kFirstBeatStep);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    while (!stopping_ && !ended_) {
        shared_->beat(in_flight());
        shared_leases_->renew();
        shared_suppressions_->sync();
        shared_suspensions_->sync();
        shared_throttles_->sync();
        const int hosts = shared_->hosts_seen();
        if (hosts != hosts_written_) {
            std::ofstream(hosts_file(*settings_), std::ios::trunc) << hosts << "\n";
            hosts_written_ = hosts;
        }
        timer.expires_after(kBeat);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace mxlane::qrunner
