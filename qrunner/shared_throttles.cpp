// shared_throttles: reply rules' throttles as every host applies them, kept per host and shared through Redis (mxlane:throttled).
#include "qrunner/shared_throttles.hpp"

#include <cstdio>
#include <cstdlib>

#include "libshared/store/queue_store.hpp"

namespace mxlane::qrunner {

std::string SharedThrottle::encode() const {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.9g", per_second);
    return std::to_string(until) + " " + rate + (reason.empty() ? "" : " " + reason);
}

std::optional<SharedThrottle> SharedThrottle::decode(std::string_view text) {
    const std::string s(text);
    char* end = nullptr;
    SharedThrottle t;
    t.until = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != ' ') return std::nullopt;
    const char* rate = end + 1;
    t.per_second = std::strtod(rate, &end);
    if (end == rate || !(t.per_second > 0) || (*end != ' ' && *end != '\0')) return std::nullopt;
    if (*end == ' ') t.reason = end + 1;
    return t;
}

void ThrottleTable::put(const std::string& name, SharedThrottle t, std::int64_t now) {
    std::lock_guard lock(mu_);
    std::erase_if(map_, [&](const auto& e) { return e.second.until <= now; });
    map_[name] = std::move(t);
}

std::optional<SharedThrottle> ThrottleTable::get(const std::string& name, std::int64_t now) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    if (it == map_.end() || it->second.until <= now) return std::nullopt;
    return it->second;
}

std::map<std::string, std::string> ThrottleTable::read(std::int64_t now) {
    std::lock_guard lock(mu_);
    std::erase_if(map_, [&](const auto& e) { return e.second.until <= now; });
    std::map<std::string, std::string> m;
    for (const auto& [name, t] : map_) m[name] = t.encode();
    return m;
}

bool ThrottleTable::add(const std::string& name, std::string_view value, std::int64_t now) {
    auto t = SharedThrottle::decode(value);
    if (!t || t->until <= now) return false;  // unreadable, or ran out on the way
    std::lock_guard lock(mu_);
    auto& slot = map_[name];
    if (slot.until == t->until && slot.per_second == t->per_second) return false;
    slot = std::move(*t);
    return true;
}

bool ThrottleTable::remove(const std::string& name) {
    std::lock_guard lock(mu_);
    return map_.erase(name) > 0;
}

LocalList throttle_list(ThrottleTable& table) {
    return LocalList{
        "throttled",
        [&table] { return table.read(store::now_ms()); },
        [&table](const std::string& name, const std::string& value) { return table.add(name, value, store::now_ms()); },
        [&table](const std::string& name) { return table.remove(name); },
        {},
        {},
    };
}

}  // namespace mxlane::qrunner
