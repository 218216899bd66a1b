// shared_state: rate limits and hosts shared by several mail servers through Redis, and each one's share when Redis is away.
#include "qrunner/shared_state.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

#include "libshared/log.hpp"

namespace mxlane::qrunner {

namespace {

// While a token is asked for, the scheduler looks again this soon (the answer
// wakes it too; this is for a connection idling for its next message).
constexpr auto kAskingRetry = std::chrono::milliseconds(20);

std::string hosts_text(int n) { return std::to_string(n) + (n == 1 ? " host" : " hosts"); }

}  // namespace

SharedState::SharedState(std::unique_ptr<SharedBackend> backend, std::string host, std::string label,
                         int hosts_last_seen)
    : backend_(std::move(backend)), host_(std::move(host)), label_(std::move(label)),
      hosts_(std::max(1, hosts_last_seen)) {}

bool SharedState::sharing() const {
    std::lock_guard lock(mu_);
    return sharing_;
}

int SharedState::divisor() const {
    std::lock_guard lock(mu_);
    return sharing_ ? 1 : hosts_;
}

int SharedState::hosts_seen() const {
    std::lock_guard lock(mu_);
    return hosts_;
}

SharedState::Clock::time_point SharedState::ready_at(const std::string& key, double per_second, double burst,
                                                     Clock::time_point now) {
    if (per_second <= 0) return now;
    bool ask_now = false;
    Clock::time_point when = now;
    {
        std::lock_guard lock(mu_);
        if (!sharing_) return now;
        Bucket& b = buckets_[key];
        if (b.granted > 0) return now;
        if (b.asking) when = now + kAskingRetry;
        else if (b.retry_at > now) when = b.retry_at;
        else {
            b.asking = ask_now = true;
            when = now + kAskingRetry;
        }
    }
    if (ask_now) ask(key, per_second, burst, now);
    return when;
}

void SharedState::take(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = buckets_.find(key);
    if (sharing_ && it != buckets_.end() && it->second.granted > 0) --it->second.granted;
}

void SharedState::ask(const std::string& key, double per_second, double burst, Clock::time_point now) {
    backend_->take(key, per_second, burst, [this, key, now](std::optional<SharedBackend::Take> t) {
        if (!t) {
            lost("no answer to a token request");
            return;
        }
        {
            std::lock_guard lock(mu_);
            Bucket& b = buckets_[key];
            b.asking = false;
            if (t->granted) ++b.granted;
            else b.retry_at = now + std::chrono::milliseconds(std::max<std::int64_t>(1, t->wait_ms));  // from the asking
        }
        if (t->granted && wake_) wake_();
    });
}

void SharedState::beat(boost::json::object in_flight) {
    boost::json::object row;
    row["in_flight"] = std::move(in_flight);
    backend_->heartbeat(host_, boost::json::serialize(row), [this](std::optional<std::vector<HostRow>> rows) {
        if (!rows) {
            lost("no answer to the heartbeat");
            return;
        }
        // Hosts alive by Redis's clock: the newest heartbeat (ours, just written) is its now.
        std::int64_t newest = 0;
        for (const auto& r : *rows) newest = std::max(newest, r.last_ms);
        const int alive = static_cast<int>(std::count_if(
            rows->begin(), rows->end(), [&](const HostRow& r) { return newest - r.last_ms <= kHostTimeoutMs; }));
        int hosts = 0;
        {
            std::lock_guard lock(mu_);
            // Back after Redis was away (restarted empty, perhaps): the others'
            // heartbeats may not be there yet, so the count does not drop at once.
            hosts = sharing_ ? std::max(1, alive) : std::max(hosts_, alive);
            std::swap(hosts, hosts_);
        }
        const int now_seen = hosts_seen();
        if (hosts != now_seen)
            log::info("shared_state: " + hosts_text(now_seen) + (now_seen == 1 ? " shares " : " share ") + label_);
        set_sharing(true, "");
    });
}

void SharedState::lost(const std::string& why) { set_sharing(false, why); }

void SharedState::set_sharing(bool on, const std::string& why) {
    int hosts = 0;
    {
        std::lock_guard lock(mu_);
        if (on == sharing_ && (on || said_alone_)) return;
        const bool changed = on != sharing_;
        sharing_ = on;
        said_alone_ = !on;
        hosts = hosts_;
        buckets_.clear();  // tokens granted before are not counted on
        if (!changed && !on) hosts = -hosts;  // at start: no reshape needed, only the log line
    }
    if (on)
        log::info("shared_state: limits shared through " + label_ + " by " + hosts_text(hosts));
    else
        log::warning("shared_state: " + label_ + " does not answer (" + why + "): this host goes on alone at 1/" +
                     std::to_string(std::abs(hosts)) + " of every limit until it is back");
    if (hosts > 0 && reshape_) reshape_();
    if (wake_) wake_();
}

}  // namespace mxlane::qrunner
