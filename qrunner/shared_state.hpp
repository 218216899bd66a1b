// shared_state: rate limits and hosts shared by several mail servers through Redis, and each one's share when Redis is away.
#pragma once
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mxlane::qrunner {

// One host's heartbeat as every host sees it (mxlanectl hosts).
struct HostRow {
    std::string host;
    std::int64_t last_ms = 0;      // its last heartbeat, ms since the epoch (Redis's clock)
    boost::json::object in_flight;  // connections open per destination and provider
};

// What SharedState needs of the server that holds the shared state:
// Redis (shared_state_redis.cpp), or a double in the unit tests. Every call
// answers through its callback, later, on the event loop; nullopt means no
// answer (not connected, lost, too slow) and never waits.
class SharedBackend {
public:
    struct Take {
        bool granted = false;
        std::int64_t wait_ms = 0;  // not granted: when the next token is there
    };
    virtual ~SharedBackend() = default;
    // Takes one token from the bucket `key` that every host draws from.
    virtual void take(const std::string& key, double per_second, double burst,
                      std::function<void(std::optional<Take>)> done) = 0;
    // Writes this host's heartbeat (`row`, JSON) and answers every host's last one.
    virtual void heartbeat(const std::string& host, const std::string& row,
                           std::function<void(std::optional<std::vector<HostRow>>)> done) = 0;
};

// Token buckets across hosts. Each Shaping keeps its local bucket; while Redis
// answers, a message or connection also needs a token from the shared bucket
// of the same name (requested on demand, one at a time, without waiting: the
// scheduler tries again when it comes). While Redis does not answer, the
// local buckets run at limit / hosts (the hosts seen at the last heartbeat),
// so that the hosts together stay within the limit without talking.
//
// Called under the scheduler's lock; calls back without holding its own.
class SharedState {
public:
    using Clock = std::chrono::steady_clock;
    // A host whose heartbeat is older than this no longer counts (nor its leases).
    static constexpr std::int64_t kHostTimeoutMs = 10000;

    SharedState(std::unique_ptr<SharedBackend> backend, std::string host, std::string label, int hosts_last_seen);
    // A token came (try again) / sharing started or stopped (limits change: shape again).
    void on_wake(std::function<void()> f) { wake_ = std::move(f); }
    void on_reshape(std::function<void()> f) { reshape_ = std::move(f); }

    // When the shared bucket `key` has a token for this host (now when it has,
    // or when nothing is shared); asks Redis for one when it has none.
    Clock::time_point ready_at(const std::string& key, double per_second, double burst, Clock::time_point now);
    // Uses the token ready_at found.
    void take(const std::string& key);
    bool sharing() const;
    // What the limits are divided by: 1 while sharing; else the hosts last seen.
    int divisor() const;
    int hosts_seen() const;

    // Every second: this host's heartbeat, and the hosts seen.
    void beat(boost::json::object in_flight);
    // The backend's connection went away.
    void lost(const std::string& why);

private:
    struct Bucket {
        int granted = 0;
        bool asking = false;
        Clock::time_point retry_at{};
    };
    void ask(const std::string& key, double per_second, double burst, Clock::time_point now);
    void set_sharing(bool on, const std::string& why);

    std::unique_ptr<SharedBackend> backend_;
    const std::string host_;
    const std::string label_;
    std::function<void()> wake_;
    std::function<void()> reshape_;
    mutable std::mutex mu_;  // guards what follows
    bool sharing_ = false;
    bool said_alone_ = false;  // "each host at its share" logged since the last time sharing started
    int hosts_ = 1;
    std::map<std::string, Bucket> buckets_;
};

}  // namespace mxlane::qrunner
