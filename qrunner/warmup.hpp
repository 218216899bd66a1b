// warmup: daily caps per sending address and provider by day of the address's life (warmup_schedule), and the counts against them.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mxlane::qrunner {

constexpr std::int64_t kDayMs = 86400 * 1000LL;
constexpr std::int64_t kNoCap = std::numeric_limits<std::int64_t>::max();

// Days since the epoch (UTC) of a time in ms, and the start of the day after it.
std::int64_t epoch_day(std::int64_t ms);
std::int64_t next_day_ms(std::int64_t ms);
// Day of an address's life on `today` (1: the day of its first use).
std::int64_t life_day(std::int64_t first_day, std::int64_t today);

// warmup_schedule: caps[0] on day 1, caps[1] on day 2, ...; the last repeats.
struct WarmupSchedule {
    std::vector<std::int64_t> caps;  // empty: no cap
    std::int64_t cap(std::int64_t day) const;  // kNoCap without a schedule
    // From the parameter's values (checked as integers by the config's type).
    static WarmupSchedule parse(const std::vector<std::string>& values);
};

// What the qrunner knows of the warm-up (under the scheduler's mutex): first
// days and today's counts, as the store has them plus what it took since.
class WarmupBook {
public:
    struct Count {
        std::int64_t day = 0;   // life day counted
        std::int64_t sent = 0;
    };
    // From the store: first days by address; counts by "ADDRESS/PROVIDER".
    void load_first_days(std::map<std::string, std::int64_t> first_days) { first_ = std::move(first_days); }
    void load_count(const std::string& address, const std::string& provider, Count c) {
        counts_[key(address, provider)] = c;
    }
    // The address's first day; none when it was never used.
    std::optional<std::int64_t> first_day(const std::string& address) const {
        auto it = first_.find(address);
        return it == first_.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
    }
    // Another host's first use of the address (shared_state) counts here too.
    void set_first_day(const std::string& address, std::int64_t day) { first_[address] = day; }
    // The address's life day today; an address never used is on day 1.
    std::int64_t day(const std::string& address, std::int64_t today) const;
    // Messages the address may still send to the provider today.
    std::int64_t room(const std::string& address, const std::string& provider, const WarmupSchedule& schedule,
                      std::int64_t today) const;
    // n messages taken. Returns the new count, and whether the address was used
    // for the first time (both go to the store).
    struct Taken {
        Count count;
        std::optional<std::int64_t> first_day;  // set: record it
    };
    Taken take(const std::string& address, const std::string& provider, std::int64_t n, std::int64_t today);

private:
    static std::string key(const std::string& address, const std::string& provider) {
        return address + "/" + provider;
    }
    std::map<std::string, std::int64_t> first_;
    std::map<std::string, Count> counts_;
};

}  // namespace mxlane::qrunner
