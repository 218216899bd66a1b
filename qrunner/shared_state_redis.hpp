// shared_state_redis: SharedState's backend on Redis: the token bucket and heartbeat scripts, the keys.
#pragma once
#include <memory>

#include "libshared/config_file.hpp"
#include "qrunner/redis_client.hpp"
#include "qrunner/shared_state.hpp"

namespace mxlane::qrunner {

// The keys every host uses (in the database of the shared_state URL).
inline constexpr const char* kHostsKey = "mxlane:hosts";              // host -> "ms json" (last heartbeat)
inline constexpr const char* kBucketPrefix = "mxlane:bucket:";        // + msg:NAME / conn:NAME
// shared_lists.cpp: mxlane:suppressed and mxlane:suspended (hash and channel of the same name).

// shared_state and shared_state_password_file; throws std::runtime_error naming the parameter.
RedisUrl shared_state_url(const Config& cfg);

std::unique_ptr<SharedBackend> redis_backend(RedisClient& client);
// HGETALL mxlane:hosts as rows (mxlanectl hosts, the heartbeat's answer).
std::vector<HostRow> host_rows(const RedisReply& all);

}  // namespace mxlane::qrunner
