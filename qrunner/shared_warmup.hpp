// shared_warmup: warm-up daily counts and first days shared by several mail servers through Redis, and each one's share when Redis is away.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "qrunner/redis_client.hpp"
#include "qrunner/warmup.hpp"

namespace mxlane::qrunner {

// What SharedWarmup needs of Redis (redis_warmup_backend), or of a double in
// the unit tests. Every call answers through its callback, later; nullopt
// means no answer (not connected, lost, too slow) and never waits.
class WarmupBackend {
public:
    struct Reserved {
        std::int64_t granted = 0;    // of the n asked for: what today's cap had room for
        std::int64_t sent = 0;       // today's count of every host, with these
        std::int64_t first_day = 0;  // the address's first day as every host knows it
    };
    virtual ~WarmupBackend() = default;
    // In one atomic step: the address's first day is first_day unless a host
    // set one before (that one stays); then up to n of today's cap (caps: the
    // warmup_schedule by life day) are counted for the address towards the provider.
    virtual void reserve(const std::string& address, const std::string& provider, std::int64_t today,
                         std::int64_t first_day, std::int64_t n, const std::vector<std::int64_t>& caps,
                         std::function<void(std::optional<Reserved>)> done) = 0;
    // Counted by reserve but not sent after all: taken off today's count again.
    virtual void give_back(const std::string& address, const std::string& provider, std::int64_t today,
                           std::int64_t n) = 0;
};

// The keys: mxlane:warmup:ADDRESS:PROVIDER:YYYYMMDD (today's count, kept 2
// days) and mxlane:warmup-first:ADDRESS (first day, days since the epoch).
std::string warmup_count_key(const std::string& address, const std::string& provider, std::int64_t day);
std::string warmup_first_key(const std::string& address);
std::unique_ptr<WarmupBackend> redis_warmup_backend(RedisClient& client);

// What a batch of mail may take of each address's cap towards one provider.
struct WarmupAllowance {
    bool shared = false;  // Redis answered for every address; false: each host counts alone against its share
    int hosts = 1;        // the share's divisor (the hosts last seen) when not shared
    std::map<std::string, WarmupBackend::Reserved> by_address;  // shared: what Redis granted
    std::map<std::string, std::int64_t> used;                   // what the batch took of it
};

// What the address may still send: shared, what Redis granted less what the
// batch used; else this host's room (local_room: cap less its own count)
// against its share of the cap (cap / hosts).
std::int64_t allowance_room(const WarmupAllowance& a, const std::string& address, std::int64_t local_room,
                            std::int64_t cap);

// Before the scheduler spreads a batch over a pool's addresses, it reserves
// the batch's size from each address's cap in Redis (Redis decides: a Lua
// step checks the cap and counts atomically, so that two hosts never go over
// it together), then gives back what it did not use. While Redis does not
// answer, each host counts alone against cap / hosts, and says so once.
class SharedWarmup {
public:
    SharedWarmup(std::unique_ptr<WarmupBackend> backend, std::string label);
    struct Ask {
        std::string provider;
        std::int64_t today = 0, n = 0;
        std::vector<std::int64_t> caps;
        std::map<std::string, std::int64_t> first_days;  // address -> this host's first day of it (today if none)
        int hosts = 1;
    };
    // done is called once, after every address is answered (or not).
    void reserve(Ask ask, std::function<void(WarmupAllowance)> done);
    // What the allowance did not use goes back to Redis.
    void give_back(const WarmupAllowance& a, const std::string& provider, std::int64_t today);

private:
    void answered(bool shared);

    std::unique_ptr<WarmupBackend> backend_;
    const std::string label_;
    std::mutex mu_;
    std::optional<bool> sharing_;  // as last said in the log
};

}  // namespace mxlane::qrunner
