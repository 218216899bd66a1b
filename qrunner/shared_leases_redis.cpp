// shared_leases_redis: SharedLeases' backend on Redis: a sorted set of leases per name, the lease and renewal scripts.
#include <string>

#include "qrunner/redis_client.hpp"
#include "qrunner/shared_leases.hpp"

namespace mxlane::qrunner {

namespace {

// mxlane:conns:NAME: member HOST:PID:N, score its expiry in ms on Redis's
// clock. A sorted set because expiry is per member (a hash field or a counter
// cannot expire alone) and ZREMRANGEBYSCORE drops every expired one at once.
constexpr const char* kConnsPrefix = "mxlane:conns:";

// Dropping the expired, counting and adding are one atomic step, however many
// hosts ask at once. KEYS[1]: the set; ARGV: member, limit, lifetime ms.
// Returns 1 when the lease was granted.
constexpr const char* kLeaseScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
)lua";

// KEYS: one set per name; ARGV: lifetime ms, then per key the number of
// members and the members. Sets each to expire a lifetime from now (adding
// those a restarted Redis lacks) and drops the expired.
constexpr const char* kRenewScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local a = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  for j = 1, n do
    redis.call('ZADD', KEYS[i], now + ttl, ARGV[a])
    a = a + 1
  end
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1
)lua";

const std::string kLifetime = std::to_string(SharedState::kHostTimeoutMs);

class RedisLeases final : public LeaseBackend {
public:
    explicit RedisLeases(RedisClient& client) : client_(client) {}

    void lease(const std::string& name, const std::string& member, int limit,
               std::function<void(std::optional<bool>)> done) override {
        client_.command({"EVAL", kLeaseScript, "1", kConnsPrefix + name, member, std::to_string(limit), kLifetime},
                        [done = std::move(done)](std::optional<RedisReply> r) {
                            if (!r || r->error()) return done({});
                            done(r->number() == 1);
                        });
    }

    void release(const std::string& name, const std::string& member) override {
        client_.command({"ZREM", kConnsPrefix + name, member}, nullptr);
    }

    void refresh(const std::map<std::string, std::vector<std::string>>& held,
                 std::function<void(bool)> done) override {
        std::vector<std::string> args{"EVAL", kRenewScript, std::to_string(held.size())};
        for (const auto& [name, members] : held) args.push_back(kConnsPrefix + name);
        args.push_back(kLifetime);
        for (const auto& [name, members] : held) {
            args.push_back(std::to_string(members.size()));
            args.insert(args.end(), members.begin(), members.end());
        }
        client_.command(std::move(args), [done = std::move(done)](std::optional<RedisReply> r) {
            done(r && !r->error());
        });
    }

private:
    RedisClient& client_;
};

}  // namespace

std::unique_ptr<LeaseBackend> redis_lease_backend(RedisClient& client) { return std::make_unique<RedisLeases>(client); }

}  // namespace mxlane::qrunner
