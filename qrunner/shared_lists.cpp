// shared_lists: the suppression list kept alike on every host through Redis (a hash for catch-up, pub/sub for news).
#include "qrunner/shared_lists.hpp"

#include <boost/asio/post.hpp>

#include <map>

#include "libshared/log.hpp"
#include "qrunner/shared_state_redis.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

// Runs f on the store thread; a store error is logged (and a panic ends the process).
template <class F>
void on_store(asio::thread_pool& pool, F f) {
    asio::post(pool, [f = std::move(f)]() mutable {
        try {
            f();
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error(std::string("shared_state: suppression list: ") + e.what());
        }
    });
}

}  // namespace

SharedSuppressions::SharedSuppressions(RedisClient& commands, RedisClient& subscriber, store::QueueStore& store,
                                       asio::thread_pool& store_thread)
    : commands_(commands), store_(store), store_thread_(store_thread) {
    subscriber.subscribe(kSuppressedChannel, [this](const std::string& payload) { message(payload); });
    subscriber.on_state([this](bool up) {
        std::lock_guard lock(mu_);
        if (up) caught_up_ = false;  // what was said while it was away: the hash has it
    });
}

void SharedSuppressions::sync() {
    {
        std::lock_guard lock(mu_);
        if (catching_up_ || !commands_.up()) return;
        if (!caught_up_) {
            catching_up_ = true;
        } else {
            on_store(store_thread_, [this] { publish_changes(); });
            return;
        }
    }
    catch_up();
}

void SharedSuppressions::catch_up() {
    commands_.command({"HGETALL", kSuppressedKey}, [this](std::optional<RedisReply> r) {
        if (!r || r->type != RedisReply::Type::array) {
            std::lock_guard lock(mu_);
            catching_up_ = false;
            return;
        }
        std::map<std::string, std::string> shared;
        for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) shared[r->elements[i].str] = r->elements[i + 1].str;
        on_store(store_thread_, [this, shared = std::move(shared)] {
            std::size_t added = 0;
            for (const auto& [address, reason] : shared)
                if (store_.suppress(address, reason, store::now_ms())) ++added;
            if (added) log::info("shared_state: " + std::to_string(added) + " addresses suppressed by other hosts");
            std::lock_guard lock(mu_);
            known_.clear();
            for (const auto& [address, reason] : shared) known_.insert(address);
            caught_up_ = true;
            catching_up_ = false;
        });
    });
}

void SharedSuppressions::publish_changes() {
    std::vector<store::Suppression> local = store_.suppressions();
    std::vector<std::vector<std::string>> commands;
    {
        std::lock_guard lock(mu_);
        std::set<std::string> now;
        for (const auto& s : local) {
            now.insert(s.address);
            if (known_.insert(s.address).second) {
                commands.push_back({"HSET", kSuppressedKey, s.address, s.reason});
                commands.push_back({"PUBLISH", kSuppressedChannel, "+" + s.address + " " + s.reason});
            }
        }
        for (auto it = known_.begin(); it != known_.end();) {
            if (now.contains(*it)) {
                ++it;
                continue;
            }
            commands.push_back({"HDEL", kSuppressedKey, *it});
            commands.push_back({"PUBLISH", kSuppressedChannel, "-" + *it});
            it = known_.erase(it);
        }
    }
    for (auto& c : commands)
        commands_.command(std::move(c), [this](std::optional<RedisReply> r) {
            if (r && !r->error()) return;
            std::lock_guard lock(mu_);
            caught_up_ = false;  // Redis missed a change: catch up (and send it again) when it is back
        });
}

void SharedSuppressions::message(const std::string& payload) {
    if (payload.size() < 2 || (payload[0] != '+' && payload[0] != '-')) return;
    const bool add = payload[0] == '+';
    const auto space = payload.find(' ');
    std::string address = payload.substr(1, space == std::string::npos ? std::string::npos : space - 1);
    std::string reason = space == std::string::npos ? "" : payload.substr(space + 1);
    on_store(store_thread_, [this, add, address = std::move(address), reason = std::move(reason)] {
        {
            std::lock_guard lock(mu_);
            if (add) known_.insert(address);
            else known_.erase(address);
        }
        if (add && store_.suppress(address, reason, store::now_ms()))
            log::info("shared_state: " + address + " suppressed by another host (" + reason + ")");
        if (!add && store_.unsuppress(address)) log::info("shared_state: " + address + " unsuppressed by another host");
    });
}

}  // namespace mxlane::qrunner
