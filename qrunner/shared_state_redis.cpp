// shared_state_redis: SharedState's backend on Redis: the token bucket and heartbeat scripts, the keys.
#include "qrunner/shared_state_redis.hpp"

#include <boost/json/parse.hpp>

#include <cstdio>
#include <fstream>

#include "libshared/text.hpp"

namespace mxlane::qrunner {

namespace {

// A token bucket in one script, so that reading, refilling and taking are one
// atomic step however many hosts ask at once; Redis's TIME is the one clock
// (the hosts' clocks may differ). Fixed INCR+PEXPIRE windows would let twice
// the limit through around a window's edge and cannot spread "3600 an hour"
// to one a second; this is the same bucket as each host's local one.
// KEYS[1]: the bucket; ARGV: tokens per second, burst. Returns {granted, wait ms}.
constexpr const char* kTakeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local granted, wait = 0, 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  granted = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return {granted, wait}
)lua";

// KEYS[1]: mxlane:hosts; ARGV: this host, its row. Stamps the row with Redis's
// time, forgets hosts silent for a day, answers every row.
constexpr const char* kBeatScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local last = tonumber(string.match(all[i + 1], '^%d+'))
  if last and now - last > 86400000 then redis.call('HDEL', KEYS[1], all[i]) end
end
return all
)lua";

class RedisBackend final : public SharedBackend {
public:
    explicit RedisBackend(RedisClient& client) : client_(client) {}

    void take(const std::string& key, double per_second, double burst,
              std::function<void(std::optional<Take>)> done) override {
        char rate[32], cap[32];
        std::snprintf(rate, sizeof rate, "%.9g", per_second);
        std::snprintf(cap, sizeof cap, "%.9g", burst);
        client_.command({"EVAL", kTakeScript, "1", std::string(kBucketPrefix) + key, rate, cap},
                        [done = std::move(done)](std::optional<RedisReply> r) {
                            if (!r || r->type != RedisReply::Type::array || r->elements.size() != 2) return done({});
                            done(Take{r->elements[0].number() == 1, r->elements[1].number()});
                        });
    }

    void heartbeat(const std::string& host, const std::string& row,
                   std::function<void(std::optional<std::vector<HostRow>>)> done) override {
        client_.command({"EVAL", kBeatScript, "1", kHostsKey, host, row},
                        [done = std::move(done)](std::optional<RedisReply> r) {
                            if (!r || r->type != RedisReply::Type::array) return done({});
                            done(host_rows(*r));
                        });
    }

private:
    RedisClient& client_;
};

}  // namespace

RedisUrl shared_state_url(const Config& cfg) {
    RedisUrl url;
    try {
        url = RedisUrl::parse(cfg.get("shared_state"));
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(std::string("shared_state: ") + e.what());
    }
    url.ca_file = cfg.get("shared_state_tls_CAfile");
    const std::string file = cfg.get("shared_state_password_file");
    if (file.empty()) return url;
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line))
        throw std::runtime_error("shared_state_password_file " + file + ": cannot read it");
    url.password = std::string(trim(line));
    return url;
}

std::unique_ptr<SharedBackend> redis_backend(RedisClient& client) { return std::make_unique<RedisBackend>(client); }

std::vector<HostRow> host_rows(const RedisReply& all) {
    std::vector<HostRow> rows;
    for (std::size_t i = 0; i + 1 < all.elements.size(); i += 2) {
        HostRow row;
        row.host = all.elements[i].str;
        const std::string& value = all.elements[i + 1].str;
        const auto space = value.find(' ');
        row.last_ms = std::atoll(value.substr(0, space).c_str());
        if (space != std::string::npos) {
            boost::system::error_code ec;
            auto j = boost::json::parse(value.substr(space + 1), ec);
            if (!ec && j.is_object() && j.as_object().contains("in_flight") && j.at("in_flight").is_object())
                row.in_flight = j.at("in_flight").as_object();
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace mxlane::qrunner
