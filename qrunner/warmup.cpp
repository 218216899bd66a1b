// warmup: daily caps per sending address and provider by day of the address's life (warmup_schedule), and the counts against them.
#include "qrunner/warmup.hpp"

#include <algorithm>

namespace mxlane::qrunner {

std::int64_t epoch_day(std::int64_t ms) { return ms >= 0 ? ms / kDayMs : -((-ms + kDayMs - 1) / kDayMs); }

std::int64_t next_day_ms(std::int64_t ms) { return (epoch_day(ms) + 1) * kDayMs; }

// A first day in the future (a clock set back, a hand-made record) counts as day 1.
std::int64_t life_day(std::int64_t first_day, std::int64_t today) { return std::max<std::int64_t>(1, today - first_day + 1); }

WarmupSchedule WarmupSchedule::parse(const std::vector<std::string>& values) {
    WarmupSchedule w;
    for (const auto& cap : values) w.caps.push_back(std::stoll(cap));
    return w;
}

std::int64_t WarmupSchedule::cap(std::int64_t day) const {
    if (caps.empty()) return kNoCap;
    const auto i = static_cast<std::size_t>(std::max<std::int64_t>(day, 1) - 1);
    return caps[std::min(i, caps.size() - 1)];
}

std::int64_t WarmupBook::day(const std::string& address, std::int64_t today) const {
    auto it = first_.find(address);
    return it == first_.end() ? 1 : life_day(it->second, today);
}

std::int64_t WarmupBook::room(const std::string& address, const std::string& provider,
                              const WarmupSchedule& schedule, std::int64_t today) const {
    const std::int64_t d = day(address, today);
    const std::int64_t cap = schedule.cap(d);
    if (cap == kNoCap) return kNoCap;
    auto it = counts_.find(key(address, provider));
    const std::int64_t sent = it != counts_.end() && it->second.day == d ? it->second.sent : 0;
    return std::max<std::int64_t>(0, cap - sent);
}

WarmupBook::Taken WarmupBook::take(const std::string& address, const std::string& provider, std::int64_t n,
                                   std::int64_t today) {
    Taken t;
    if (!first_.contains(address)) {
        first_[address] = today;
        t.first_day = today;
    }
    const std::int64_t d = day(address, today);
    Count& c = counts_[key(address, provider)];
    if (c.day != d) c = Count{d, 0};  // a new day of its life: a new count
    c.sent += n;
    t.count = c;
    return t;
}

}  // namespace mxlane::qrunner
