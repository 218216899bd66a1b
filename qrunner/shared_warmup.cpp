// shared_warmup: warm-up daily counts and first days shared by several mail servers through Redis, and each one's share when Redis is away.
#include "qrunner/shared_warmup.hpp"

#include <ctime>

#include <algorithm>

#include "libshared/log.hpp"

namespace mxlane::qrunner {

namespace {

// The first day and today's count in one script, so that checking the cap
// and counting are one atomic step however many hosts ask at once (INCRBY
// alone would let two hosts both go over the cap and then have to undo it).
// KEYS: the first day, today's count; ARGV: first day offered, today, n, caps...
// Returns {granted, today's count after, first day}. Today's count is kept two
// days (172800 s): long enough for hosts whose clocks differ around midnight.
constexpr const char* kReserveScript = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local first = tonumber(redis.call('GET', KEYS[1])) or tonumber(ARGV[1])
local day = math.max(1, tonumber(ARGV[2]) - first + 1)
local cap = tonumber(ARGV[math.min(3 + day, #ARGV)])
local sent = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local n = math.max(0, math.min(tonumber(ARGV[3]), cap - sent))
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
redis.call('EXPIRE', KEYS[2], 172800)
return {n, sent + n, first}
)lua";

// KEYS: today's count; ARGV: n. Never below 0 (a count that expired meanwhile).
constexpr const char* kGiveBackScript = R"lua(
local sent = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local n = math.min(sent, tonumber(ARGV[1]))
if n > 0 then redis.call('DECRBY', KEYS[1], n) end
return n
)lua";

std::string yyyymmdd(std::int64_t day) {
    const std::time_t t = static_cast<std::time_t>(day) * 86400;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
    return buf;
}

class RedisWarmup final : public WarmupBackend {
public:
    explicit RedisWarmup(RedisClient& client) : client_(client) {}

    void reserve(const std::string& address, const std::string& provider, std::int64_t today, std::int64_t first_day,
                 std::int64_t n, const std::vector<std::int64_t>& caps,
                 std::function<void(std::optional<Reserved>)> done) override {
        std::vector<std::string> args{"EVAL", kReserveScript, "2", warmup_first_key(address),
                                      warmup_count_key(address, provider, today), std::to_string(first_day),
                                      std::to_string(today), std::to_string(n)};
        for (auto cap : caps) args.push_back(std::to_string(cap));
        client_.command(std::move(args), [done = std::move(done)](std::optional<RedisReply> r) {
            if (!r || r->type != RedisReply::Type::array || r->elements.size() != 3) return done({});
            done(Reserved{r->elements[0].number(), r->elements[1].number(), r->elements[2].number()});
        });
    }

    void give_back(const std::string& address, const std::string& provider, std::int64_t today,
                   std::int64_t n) override {
        client_.command({"EVAL", kGiveBackScript, "1", warmup_count_key(address, provider, today), std::to_string(n)},
                        [](std::optional<RedisReply>) {});
    }

private:
    RedisClient& client_;
};

}  // namespace

std::string warmup_count_key(const std::string& address, const std::string& provider, std::int64_t day) {
    return "mxlane:warmup:" + address + ":" + provider + ":" + yyyymmdd(day);
}

std::string warmup_first_key(const std::string& address) { return "mxlane:warmup-first:" + address; }

std::unique_ptr<WarmupBackend> redis_warmup_backend(RedisClient& client) {
    return std::make_unique<RedisWarmup>(client);
}

std::int64_t allowance_room(const WarmupAllowance& a, const std::string& address, std::int64_t local_room,
                            std::int64_t cap) {
    auto used = a.used.find(address);
    const std::int64_t taken = used == a.used.end() ? 0 : used->second;
    if (a.shared) {
        auto it = a.by_address.find(address);
        return it == a.by_address.end() ? 0 : std::max<std::int64_t>(0, it->second.granted - taken);
    }
    if (cap == kNoCap) return local_room;
    // local_room is already less what this batch took (the book counts it).
    return std::max<std::int64_t>(0, local_room - (cap - cap / std::max(1, a.hosts)));
}

SharedWarmup::SharedWarmup(std::unique_ptr<WarmupBackend> backend, std::string label)
    : backend_(std::move(backend)), label_(std::move(label)) {}

void SharedWarmup::reserve(Ask ask, std::function<void(WarmupAllowance)> done) {
    struct Pending {
        WarmupAllowance allowance;
        std::size_t left = 0;
        bool failed = false;
        std::function<void(WarmupAllowance)> done;
        std::mutex mu;
    };
    auto p = std::make_shared<Pending>();
    p->allowance.hosts = ask.hosts;
    p->left = ask.first_days.size();
    p->done = std::move(done);
    if (p->left == 0) return p->done(std::move(p->allowance));
    const std::string provider = ask.provider;
    const std::int64_t today = ask.today;
    for (const auto& [address, first] : ask.first_days)
        backend_->reserve(address, provider, today, first, ask.n, ask.caps,
                          [this, p, address, provider, today](std::optional<WarmupBackend::Reserved> r) {
                              {
                                  std::lock_guard lock(p->mu);
                                  if (r) p->allowance.by_address[address] = *r;
                                  else p->failed = true;
                                  if (--p->left > 0) return;
                              }
                              // Every answer is in: shared only if Redis answered for each.
                              p->allowance.shared = !p->failed;
                              if (p->failed) {  // what was granted is not used: each host counts alone now
                                  for (const auto& [a, got] : p->allowance.by_address)
                                      if (got.granted > 0) backend_->give_back(a, provider, today, got.granted);
                                  p->allowance.by_address.clear();
                              }
                              answered(p->allowance.shared);
                              p->done(std::move(p->allowance));
                          });
}

void SharedWarmup::give_back(const WarmupAllowance& a, const std::string& provider, std::int64_t today) {
    if (!a.shared) return;
    for (const auto& [address, got] : a.by_address) {
        auto used = a.used.find(address);
        const std::int64_t left = got.granted - (used == a.used.end() ? 0 : used->second);
        if (left > 0) backend_->give_back(address, provider, today, left);
    }
}

void SharedWarmup::answered(bool shared) {
    {
        std::lock_guard lock(mu_);
        if (sharing_ == shared) return;
        sharing_ = shared;
    }
    if (shared)
        log::info("shared_state: warm-up counts shared through " + label_);
    else
        log::warning("shared_state: " + label_ + " does not answer for the warm-up counts: this host counts alone "
                     "against its share of each cap (cap / hosts) until it is back");
}

}  // namespace mxlane::qrunner
