// list_log: a shared list's version and log of recent changes in Redis, and what a host reads of them.
#include "qrunner/list_log.hpp"

#include <cstdlib>

namespace mxlane::qrunner {

const char* const kWriteScript = R"lua(
if ARGV[1] == '+' then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) else redis.call('HDEL', KEYS[1], ARGV[2]) end
local v = redis.call('INCR', KEYS[2])
local news = ARGV[1] .. ARGV[2]
if ARGV[1] == '+' then news = news .. ' ' .. ARGV[3] end
redis.call('RPUSH', KEYS[3], v .. ' ' .. news)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
redis.call('PUBLISH', KEYS[1], news)
return v
)lua";

const char* const kReadSinceScript = R"lua(
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local seen = tonumber(ARGV[1])
if v <= seen or v - seen > tonumber(ARGV[2]) then return {tostring(v), {}} end
return {tostring(v), redis.call('LRANGE', KEYS[2], seen - v, -1)}
)lua";

const char* const kReadAllScript = R"lua(
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}
)lua";

std::string encode_entry(const ListEntry& e) {
    return std::to_string(e.version) + " " + (e.added ? "+" : "-") + e.key + (e.added ? " " + e.value : "");
}

std::optional<ListEntry> decode_entry(std::string_view text) {
    const auto space = text.find(' ');
    if (space == std::string_view::npos || space + 2 > text.size()) return std::nullopt;
    const std::string number(text.substr(0, space));
    char* end = nullptr;
    ListEntry e;
    e.version = std::strtoull(number.c_str(), &end, 10);
    if (end == number.c_str() || *end != '\0' || e.version == 0) return std::nullopt;
    const char op = text[space + 1];
    if (op != '+' && op != '-') return std::nullopt;
    e.added = op == '+';
    const std::string_view rest = text.substr(space + 2);
    const auto gap = e.added ? rest.find(' ') : std::string_view::npos;
    e.key = std::string(rest.substr(0, gap));
    if (gap != std::string_view::npos) e.value = std::string(rest.substr(gap + 1));
    if (e.key.empty()) return std::nullopt;
    return e;
}

LogPlan plan_read(std::uint64_t seen, std::uint64_t version, std::uint64_t keep) {
    if (version == seen) return {};
    // Behind Redis's version: Redis lost its data (restarted empty, flushed) and counts anew.
    if (version < seen || version - seen > keep) return {LogPlan::Step::full, 0};
    return {LogPlan::Step::read, version - seen};
}

std::optional<std::vector<ListEntry>> entries_after(const std::vector<std::string>& tail, std::uint64_t seen,
                                                    std::uint64_t version) {
    std::vector<ListEntry> out;
    for (const auto& text : tail) {
        auto e = decode_entry(text);
        if (!e) return std::nullopt;
        if (e->version <= seen) continue;  // written before the GET that counted them: known
        if (e->version != seen + 1 + out.size()) return std::nullopt;
        out.push_back(std::move(*e));
    }
    if (out.empty() || out.back().version != version) return std::nullopt;
    return out;
}

}  // namespace mxlane::qrunner
