// list_log: a shared list's version and log of recent changes in Redis, and what a host reads of them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::qrunner {

// Each change to a shared list NAME (the hash NAME) increments NAME:version
// and appends "VERSION +key value" or "VERSION -key" to the list NAME:log,
// which keeps the last kRedisLogKeep, in one script (kWriteScript). A host
// remembers the version it has applied: a second with no change costs one
// GET; a change, reading that many entries; a full compare of the lists only
// when the host fell further behind than the log keeps, or Redis lost it all.
inline constexpr std::uint64_t kRedisLogKeep = 10000;

struct ListEntry {
    std::uint64_t version = 0;
    bool added = false;
    std::string key, value;
};
std::string encode_entry(const ListEntry& e);
std::optional<ListEntry> decode_entry(std::string_view text);

// What a host that applied `seen` does when Redis says `version`.
struct LogPlan {
    enum class Step { nothing, read, full } step = Step::nothing;
    std::uint64_t count = 0;  // read: the last `count` entries of the log
};
LogPlan plan_read(std::uint64_t seen, std::uint64_t version, std::uint64_t keep = kRedisLogKeep);

// The entries after `seen` up to `version`, in order, from the log's tail
// (kReadSinceScript); nullopt when one is missing or unreadable: compare the whole lists.
std::optional<std::vector<ListEntry>> entries_after(const std::vector<std::string>& tail, std::uint64_t seen,
                                                    std::uint64_t version);

// KEYS: NAME, NAME:version, NAME:log; ARGV: "+" or "-", key, value, keep.
// HSET or HDEL, INCR, RPUSH, LTRIM, PUBLISH "+key value" / "-key" on NAME; returns the version.
extern const char* const kWriteScript;
// KEYS: NAME:version, NAME:log; ARGV: the version seen, kRedisLogKeep. Returns
// {version, the entries after the one seen} as of one moment (no entries when
// nothing changed, or when plan_read says "full").
extern const char* const kReadSinceScript;
// KEYS: NAME, NAME:version. Returns {version, HGETALL} as of one moment.
extern const char* const kReadAllScript;

}  // namespace mxlane::qrunner
