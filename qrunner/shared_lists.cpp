// shared_lists: lists kept alike on every host through Redis (a hash for catch-up, pub/sub for news): suppressions, suspensions.
#include "qrunner/shared_lists.hpp"

#include <boost/asio/post.hpp>

#include "libshared/log.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

SharedList::SharedList(std::string name, LocalList local, RedisClient& commands, RedisClient& subscriber,
                       asio::thread_pool& store_thread)
    : name_(std::move(name)), local_(std::move(local)), commands_(commands), store_thread_(store_thread) {
    subscriber.subscribe(name_, [this](const std::string& payload) { message(payload); });
}

void SharedList::reconnected() {
    std::lock_guard lock(mu_);
    caught_up_ = false;
}

namespace {

// Runs f on the store thread; a store error is logged (and a panic ends the process).
template <class F>
void on_store(asio::thread_pool& pool, const std::string& what, F f) {
    asio::post(pool, [what, f = std::move(f)]() mutable {
        try {
            f();
        } catch (const std::exception& e) {
            store::fatal_if_panic(e);
            log::error("shared_state: " + what + ": " + e.what());
        }
    });
}

}  // namespace

void SharedList::sync() {
    {
        std::lock_guard lock(mu_);
        if (catching_up_ || !commands_.up()) return;
        if (caught_up_) {
            on_store(store_thread_, name_, [this] { publish_changes(); });
            return;
        }
        catching_up_ = true;
    }
    catch_up();
}

void SharedList::catch_up() {
    commands_.command({"HGETALL", name_}, [this](std::optional<RedisReply> r) {
        if (!r || r->type != RedisReply::Type::array) {
            std::lock_guard lock(mu_);
            catching_up_ = false;
            return;
        }
        std::map<std::string, std::string> shared;
        for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) shared[r->elements[i].str] = r->elements[i + 1].str;
        on_store(store_thread_, name_, [this, shared = std::move(shared)] {
            const auto here = local_.read();
            std::size_t added = 0;
            for (const auto& [key, value] : shared)
                if (!here.contains(key) && local_.add(key, value)) ++added;
            if (added) log::info("shared_state: " + std::to_string(added) + " " + local_.what + " by other hosts");
            std::lock_guard lock(mu_);
            known_ = shared;
            caught_up_ = true;
            catching_up_ = false;
        });
    });
}

void SharedList::publish_changes() {
    const auto here = local_.read();
    std::vector<std::vector<std::string>> commands;
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, value] : here) {
            auto it = known_.find(key);
            if (it != known_.end() && it->second == value) continue;
            known_[key] = value;
            commands.push_back({"HSET", name_, key, value});
            commands.push_back({"PUBLISH", name_, "+" + key + " " + value});
        }
        for (auto it = known_.begin(); it != known_.end();) {
            if (here.contains(it->first)) {
                ++it;
                continue;
            }
            commands.push_back({"HDEL", name_, it->first});
            commands.push_back({"PUBLISH", name_, "-" + it->first});
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

void SharedList::message(const std::string& payload) {
    if (payload.size() < 2 || (payload[0] != '+' && payload[0] != '-')) return;
    const bool add = payload[0] == '+';
    const auto space = payload.find(' ');
    std::string key = payload.substr(1, space == std::string::npos ? std::string::npos : space - 1);
    std::string value = space == std::string::npos ? "" : payload.substr(space + 1);
    on_store(store_thread_, name_, [this, add, key = std::move(key), value = std::move(value)] {
        {
            std::lock_guard lock(mu_);
            auto it = known_.find(key);
            if (add && it != known_.end() && it->second == value) return;  // this host's own news, or known
            if (!add && it == known_.end()) return;
            if (add) known_[key] = value;
            else known_.erase(it);
        }
        if (add && local_.add(key, value)) log::info("shared_state: " + key + " " + local_.what + " by another host");
        if (!add && local_.remove(key)) log::info("shared_state: " + key + " no longer " + local_.what + " by another host");
    });
}

LocalList suppression_list(store::QueueStore& store) {
    return LocalList{
        "suppressed",
        [&store] {
            std::map<std::string, std::string> m;
            for (auto& s : store.suppressions()) m[s.address] = s.reason;
            return m;
        },
        [&store](const std::string& address, const std::string& reason) {
            return store.suppress(address, reason, store::now_ms());
        },
        [&store](const std::string& address) { return store.unsuppress(address); },
    };
}

LocalList suspension_list(store::QueueStore& store) {
    return LocalList{
        "suspended",
        [&store] {
            std::map<std::string, std::string> m;
            for (auto& s : store.suspensions(store::now_ms())) m[s.name] = std::to_string(s.until) + " " + s.reason;
            return m;
        },
        [&store](const std::string& name, const std::string& value) {
            const auto space = value.find(' ');
            const std::int64_t until = std::atoll(value.substr(0, space).c_str());
            if (until <= store::now_ms()) return false;  // ran out on the way
            store.suspend(name, until, space == std::string::npos ? "" : value.substr(space + 1), store::now_ms());
            return true;
        },
        [&store](const std::string& name) { return store.resume(name); },
    };
}

}  // namespace mxlane::qrunner
