// scheduler_suspend: suspensions kept in the store (reply rules, mxlanectl pause and resume) and the
// destinations snapshot that mxlanectl destinations reads.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "libshared/dates.hpp"
#include "libshared/json.hpp"
#include "libshared/log.hpp"
#include "qrunner/scheduler.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

// How often the store's suspensions are read and the snapshot written: a
// pause or resume by mxlanectl takes effect within this.
constexpr auto kSuspensionPoll = std::chrono::seconds(1);
// A suspension "until resumed" (kForever) ends, as far as the clock goes, this far ahead.
constexpr auto kFarAhead = std::chrono::hours(24 * 365 * 10);

}  // namespace

std::int64_t wall_ms(Clock::time_point t, Clock::time_point now) {
    return store::now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
}

void Scheduler::keep_suspension(const std::string& name, std::int64_t until, const std::string& reason) {
    asio::post(store_thread_, [this, name, until, reason] {
        try {
            store_.suspend(name, until, reason, store::now_ms());
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error("cannot keep the suspension of " + name + " in the queue: " + e.what());
        }
    });
}

// The store's word on sh: a suspension there holds it; one that went
// (mxlanectl resume) ends its suspension and its backoff pause at once.
bool Scheduler::apply_suspension(Shaping& sh, Clock::time_point now) {
    const std::int64_t wall = store::now_ms();
    auto it = suspensions_.find(sh.name);
    if (it != suspensions_.end()) {
        const auto& sus = it->second;
        if (sh.suspended_wall == sus.until) return false;
        sh.suspended_wall = sus.until;
        sh.suspended_until = sus.until == store::QueueStore::kForever
                                 ? now + kFarAhead
                                 : now + std::chrono::milliseconds(sus.until - wall);
        sh.reason = sus.reason;
        notes_.push_back((sh.provider ? "provider " : "destination ") + sh.name + " suspended " +
                         (sus.until == store::QueueStore::kForever ? "until resumed" : "until " + iso_time(sus.until)) +
                         ": " + sus.reason);
        return true;
    }
    if (sh.suspended_wall == 0) return false;
    const std::int64_t until = std::exchange(sh.suspended_wall, 0);
    sh.suspended_until = {};
    if (until <= wall) return true;  // it ran out by itself
    sh.concurrency.resume();
    sh.reason.clear();
    notes_.push_back((sh.provider ? "provider " : "destination ") + sh.name + " resumed");
    asio::co_spawn(control_, release_parked(until),
                   [](std::exception_ptr e) { log_exception(e, "making due what waited for a resumed destination"); });
    return true;
}

// mxlanectl resume made due what waited in the queue for the suspension's end;
// what this qrunner put back since (until it read the resume) is made due here,
// once the result writer has committed those put-backs (5 s at most).
asio::awaitable<void> Scheduler::release_parked(std::int64_t until) {
    asio::steady_timer timer(control_);
    for (int i = 0; i < 500 && writer_.pending() > 0; ++i) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    try {
        const std::size_t n = co_await asio::co_spawn(
            store_thread_.get_executor(),
            [this, until]() -> asio::awaitable<std::size_t> { co_return store_.release_parked(until, store::now_ms()); },
            asio::use_awaitable);
        if (n > 0) wake();
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        log::error(std::string("cannot make due what waited for a resumed destination: ") + e.what());
    }
}

void Scheduler::note_suspensions(std::vector<store::QueueStore::Suspension> list) {
    Starts starts;
    {
        std::lock_guard lock(mu_);
        suspensions_.clear();
        for (auto& s : list) suspensions_[s.name] = std::move(s);
        const auto now = Clock::now();
        bool changed = false;
        for (auto& [name, p] : providers_) changed = apply_suspension(*p, now) || changed;
        for (auto& [key, d] : destinations_) changed = apply_suspension(*d->own, now) || changed;
        for (auto& [name, b] : sources_) changed = apply_suspension(*b, now) || changed;
        apply_throttles(now);
        if (changed) collect_waiting(starts);  // a resume: what waits may go
    }
    spawn(starts);
}

asio::awaitable<void> Scheduler::read_suspensions() {
    try {
        auto list = co_await asio::co_spawn(
            store_thread_.get_executor(),
            [this]() -> asio::awaitable<std::vector<store::QueueStore::Suspension>> {
                co_return store_.suspensions(store::now_ms());
            },
            asio::use_awaitable);
        note_suspensions(std::move(list));
        if (!settings()->pools.addresses.empty()) co_await read_warmup();
    } catch (const std::exception& e) {
        store::fatal_if_panic(e);
        log::error(std::string("cannot read suspended destinations from the queue: ") + e.what());
    }
}

asio::awaitable<void> Scheduler::watch_suspensions() {
    asio::steady_timer timer(control_);
    while (!stopping_ && !ended_) {
        co_await read_suspensions();
        write_snapshot();
        timer.expires_after(kSuspensionPoll);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

// ---------------------------------------------------------------- the snapshot

namespace {

json::object row(const Shaping& sh, const std::string& kind, Clock::time_point now) {
    json::object r;
    r["name"] = sh.name;
    r["kind"] = kind;
    r["connections"] = sh.active;
    r["limit"] = sh.concurrency.limit();
    r["paused_until"] = sh.holding(now) ? wall_ms(sh.holds_until(now), now) : 0;
    r["reason"] = sh.holding(now) ? sh.reason : "";
    r["last_reply"] = sh.last_reply;
    return r;
}

}  // namespace

json::array Scheduler::destination_rows() const {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    json::array rows;
    struct Sum {
        std::int64_t queued = 0, inflight = 0;
        std::set<std::string> mx;
    };
    std::map<std::string, Sum> per_provider;
    for (const auto& [key, d] : destinations_) {
        json::object r = row(*d->own, "destination", now);
        std::string mx;
        for (const auto& h : d->hosts) mx += (mx.empty() ? "" : ",") + h.name;
        const auto queued = static_cast<std::int64_t>(d->waiting_recipients());
        const std::int64_t inflight = d->on_wire.load();
        r["provider"] = d->provider ? d->provider->name : "";
        r["mx"] = mx;
        r["queued"] = queued;
        r["inflight"] = inflight;
        if (d->paused(now)) {  // every host failed: new work fails at once until then
            r["paused_until"] = std::max(r["paused_until"].as_int64(), wall_ms(d->paused_until(), now));
            r["reason"] = d->pause_reply().str();
        }
        if (d->provider) {
            auto& sum = per_provider[d->provider->name];
            sum.queued += queued;
            sum.inflight += inflight;
        }
        rows.push_back(std::move(r));
    }
    for (const auto& [name, p] : providers_) {
        if (!per_provider.contains(name) && !p->holding(now)) continue;
        json::object r = row(*p, "provider", now);
        r["provider"] = "";
        r["mx"] = name.substr(3);  // "mx:.google.com": ".google.com"
        r["queued"] = per_provider[name].queued;
        r["inflight"] = per_provider[name].inflight;
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string Scheduler::snapshot() const {
    json::array rows = destination_rows();
    json::object doc;
    doc["pid"] = static_cast<std::int64_t>(::getpid());
    doc["written"] = store::now_ms();
    doc["destinations"] = std::move(rows);
    doc["sources"] = source_rows();
    return json::serialize(std::move(doc));
}


std::string Scheduler::metrics_text() const {
    const json::array rows = destination_rows();
    struct Gauge {
        const char* name;
        const char* key;
        const char* help;
    };
    static const Gauge gauges[] = {
        {"mxlane_destination_queued", "queued", "Recipients waiting in the qrunner for a destination or provider."},
        {"mxlane_destination_inflight", "inflight", "Recipients of transactions on the wire."},
        {"mxlane_destination_connections", "connections", "Connections open or opening."},
        {"mxlane_destination_connection_limit", "limit", "Connections allowed now (after backoff)."},
        {"mxlane_destination_paused", "paused_until", "1 while suspended, backing off or unreachable."},
    };
    std::string out;
    for (const auto& g : gauges) {
        out += std::string("# HELP ") + g.name + " " + g.help + "\n# TYPE " + g.name + " gauge\n";
        for (const auto& v : rows) {
            const auto& r = v.as_object();
            const std::int64_t n = r.at(g.key).as_int64();
            out += std::string(g.name) + "{name=\"" + prometheus_label(r.at("name").as_string()) + "\",kind=\"" +
                   prometheus_label(r.at("kind").as_string()) + "\",provider=\"" + prometheus_label(r.at("provider").as_string()) + "\"} " +
                   std::to_string(std::string_view(g.key) == "paused_until" ? (n ? 1 : 0) : n) + "\n";
        }
    }
    return metrics_.text() + out;
}

void Scheduler::write_snapshot() {
    if (ended_) return;
    const std::string path = settings()->queue_directory + "/destinations.json";
    const std::string temp = path + ".new";
    const std::string text = snapshot() + "\n";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) ok = (::close(fd) == 0) && ok;
    if (ok) ok = std::rename(temp.c_str(), path.c_str()) == 0;
    if (!ok && !snapshot_failed_) log::warning("cannot write " + path + ": " + std::strerror(errno));
    snapshot_failed_ = !ok;
}

void Scheduler::remove_snapshot() {
    ::unlink((settings()->queue_directory + "/destinations.json").c_str());
}

void Scheduler::note_reply(const std::shared_ptr<Destination>& d, const Reply& reply) {
    std::lock_guard lock(mu_);
    d->each_shaping([&](Shaping& sh) { sh.last_reply = reply.str(); });
}

}  // namespace mxlane::qrunner
