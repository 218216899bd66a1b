// shared_leases: connections per destination and provider counted across hosts, as leases that expire with their host.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "qrunner/shared_state.hpp"

namespace mxlane::qrunner {

class RedisClient;

// What SharedLeases needs of Redis (shared_leases_redis.cpp), or of a double in
// the unit tests. As SharedBackend: every answer comes later, through the
// callback, on the event loop; nullopt means no answer and never waits.
class LeaseBackend {
public:
    virtual ~LeaseBackend() = default;
    // Adds `member` to the leases of `name` when fewer than `limit` are live
    // (expired ones dropped first, in the same step); answers whether it did.
    virtual void lease(const std::string& name, const std::string& member, int limit,
                       std::function<void(std::optional<bool>)> done) = 0;
    virtual void release(const std::string& name, const std::string& member) = 0;
    // Sets every lease this host holds (name -> members) to expire
    // SharedState::kHostTimeoutMs from now, adding those Redis lacks.
    virtual void refresh(const std::map<std::string, std::vector<std::string>>& held,
                         std::function<void(bool answered)> done) = 0;
};

std::unique_ptr<LeaseBackend> redis_lease_backend(RedisClient& client);

// destination_concurrency across hosts. While Redis answers (SharedState::sharing),
// a host opens a connection to NAME only with a lease on NAME: a member of
// Redis's set for NAME, granted while the set has fewer live members than the
// limit. It asks without waiting, one lease at a time per name, once its own
// limit has room; the scheduler tries again when the answer comes (wake) or
// kRetry later. Every second the leases of open connections are renewed; a
// host that dies stops renewing, and its leases expire with its heartbeat.
// While Redis is away the limits are divided among the hosts last seen, as the
// buckets (Scheduler::shape), and no lease is asked for; the connections
// opened meanwhile are given leases by the first renewal when it is back.
//
// Called under the scheduler's lock; calls back without holding its own.
class SharedLeases {
public:
    using Clock = SharedState::Clock;
    // A lease refused: asked again this much later (a connection elsewhere may close).
    static constexpr auto kRetry = std::chrono::milliseconds(200);

    // `host` makes the members unique across hosts and restarts.
    SharedLeases(std::unique_ptr<LeaseBackend> backend, SharedState& shared, std::string host);
    // A lease came: try again.
    void on_wake(std::function<void()> f) { wake_ = std::move(f); }

    // When a new connection to `name` may open as far as the leases tell (now
    // when this host holds an unused one, or when nothing is shared); asks for
    // one when it has none.
    Clock::time_point ready_at(const std::string& name, int limit, Clock::time_point now);
    // A connection to `name` opens (taking the lease ready_at found) / closes (releasing one).
    void opened(const std::string& name);
    void closed(const std::string& name);
    // Every second, with the heartbeat: renews the leases of open connections,
    // and gives back one granted but not used since the last renewal.
    void renew();
    // Leases held for open connections (mxlanectl hosts, tests).
    int held(const std::string& name) const;

private:
    struct Name {
        std::vector<std::string> held;  // members of this host's open connections
        std::optional<std::string> spare;  // granted, not yet used
        bool spare_old = false;            // the spare was there at the last renewal
        bool asking = false;
        Clock::time_point retry_at{};
    };
    void ask(const std::string& name, int limit, Clock::time_point now);
    std::string next_member();

    std::unique_ptr<LeaseBackend> backend_;
    SharedState& shared_;
    const std::string prefix_;  // HOST:PID: before each member's number
    std::function<void()> wake_;
    mutable std::mutex mu_;  // guards what follows
    std::uint64_t next_ = 0;
    std::map<std::string, Name> names_;
};

}  // namespace mxlane::qrunner
