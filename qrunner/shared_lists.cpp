// shared_lists: lists kept alike on every host through Redis (a hash, a version and log of changes, pub/sub): suppressions, suspensions.
#include "qrunner/shared_lists.hpp"

#include <boost/asio/post.hpp>

#include "libshared/log.hpp"
#include "qrunner/list_log.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

// This host's own changes sent at most per second (the rest the next second).
constexpr std::size_t kSendAtOnce = 10000;

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

std::uint64_t version_of(const RedisReply& r) { return static_cast<std::uint64_t>(std::max(0LL, r.number())); }

}  // namespace

SharedList::SharedList(std::string name, LocalList local, RedisClient& commands, RedisClient& subscriber,
                       asio::thread_pool& store_thread)
    : name_(std::move(name)), version_key_(name_ + ":version"), log_key_(name_ + ":log"), local_(std::move(local)),
      commands_(commands), store_thread_(store_thread) {
    subscriber.subscribe(name_, [this](const std::string& payload) { message(payload); });
}

void SharedList::reconnected() {
    std::lock_guard lock(mu_);
    caught_up_ = false;
}

void SharedList::sync() {
    bool full = false, read = false;
    {
        std::lock_guard lock(mu_);
        if (catching_up_ || !commands_.up()) return;
        full = catching_up_ = !caught_up_;
        read = !full && !reading_;
        if (read) reading_ = true;
    }
    if (full) return catch_up();
    if (read) read_news();
    on_store(store_thread_, name_, [this] { publish_changes(); });
}

// The whole hash and its version at one moment; this host's list compared with it.
void SharedList::catch_up() {
    commands_.command({"EVAL", kReadAllScript, "2", name_, version_key_}, [this](std::optional<RedisReply> r) {
        if (!r || r->type != RedisReply::Type::array || r->elements.size() != 2) {
            std::lock_guard lock(mu_);
            catching_up_ = false;
            return;
        }
        const std::uint64_t version = version_of(r->elements[0]);
        std::map<std::string, std::string> shared;
        const auto& all = r->elements[1].elements;
        for (std::size_t i = 0; i + 1 < all.size(); i += 2) shared[all[i].str] = all[i + 1].str;
        on_store(store_thread_, name_, [this, version, shared = std::move(shared)] {
            // Changes from here on go by the local log; those before, by this compare.
            const std::uint64_t logged = local_.log_end ? local_.log_end() : 0;
            const auto here = local_.read();
            std::size_t added = 0;
            for (const auto& [key, value] : shared)
                if (!here.contains(key) && local_.add(key, value)) ++added;
            if (added) log::info("shared_state: " + std::to_string(added) + " " + local_.what + " by other hosts");
            if (local_.log_end)
                for (const auto& [key, value] : here)
                    if (auto it = shared.find(key); it == shared.end() || it->second != value) write(true, key, value);
            std::lock_guard lock(mu_);
            if (local_.log_end) sent_ = logged;
            else known_ = shared;
            seen_ = version;
            caught_up_ = true;
            catching_up_ = false;
        });
    });
}

// What changed in Redis since the version applied here: one script, no entries when nothing did.
void SharedList::read_news() {
    std::uint64_t seen = 0;
    {
        std::lock_guard lock(mu_);
        seen = seen_;
    }
    commands_.command(
        {"EVAL", kReadSinceScript, "2", version_key_, log_key_, std::to_string(seen), std::to_string(kRedisLogKeep)},
        [this, seen](std::optional<RedisReply> r) {
            std::optional<std::vector<ListEntry>> entries;
            LogPlan plan;
            if (r && r->type == RedisReply::Type::array && r->elements.size() == 2) {
                const std::uint64_t version = version_of(r->elements[0]);
                plan = plan_read(seen, version);
                std::vector<std::string> tail;
                for (const auto& e : r->elements[1].elements) tail.push_back(e.str);
                if (plan.step == LogPlan::Step::read) entries = entries_after(tail, seen, version);
            }
            if (!entries) {
                std::lock_guard lock(mu_);
                reading_ = false;
                // Further behind than the log keeps, or Redis counts anew: compare the lists.
                if (r && plan.step != LogPlan::Step::nothing) caught_up_ = false;
                return;
            }
            on_store(store_thread_, name_, [this, seen, entries = std::move(*entries)] {
                for (const auto& e : entries) apply(e.added, e.key, e.value);
                std::lock_guard lock(mu_);
                if (seen_ == seen) seen_ = entries.back().version;
                reading_ = false;
            });
        });
}

void SharedList::write(bool add, const std::string& key, const std::string& value) {
    commands_.command({"EVAL", kWriteScript, "3", name_, version_key_, log_key_, add ? "+" : "-", key, value,
                       std::to_string(kRedisLogKeep)},
                      [this](std::optional<RedisReply> r) {
                          if (r && !r->error()) return;
                          std::lock_guard lock(mu_);
                          caught_up_ = false;  // Redis missed a change: compare (and send it again) when it is back
                      });
}

void SharedList::publish_changes() {
    if (local_.changes) return publish_logged();
    const auto here = local_.read();
    std::vector<std::pair<std::string, std::optional<std::string>>> changes;  // nullopt: removed
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, value] : here) {
            auto it = known_.find(key);
            if (it != known_.end() && it->second == value) continue;
            known_[key] = value;
            changes.emplace_back(key, value);
        }
        for (auto it = known_.begin(); it != known_.end();) {
            if (here.contains(it->first)) {
                ++it;
                continue;
            }
            changes.emplace_back(it->first, std::nullopt);
            it = known_.erase(it);
        }
    }
    for (const auto& [key, value] : changes) write(value.has_value(), key, value.value_or(""));
}

// O(1) when this host changed nothing since the last sync: the log's end is where it was.
void SharedList::publish_logged() {
    std::uint64_t from = 0;
    {
        std::lock_guard lock(mu_);
        from = sent_;
    }
    if (local_.log_end() == from) return;
    const auto changes = local_.changes(from);
    if (!changes) {
        std::lock_guard lock(mu_);
        caught_up_ = false;  // more changes than the local log keeps: compare the lists
        return;
    }
    for (const auto& c : *changes) write(c.added, c.key, c.value);
    std::lock_guard lock(mu_);
    if (!changes->empty() && sent_ == from) sent_ = changes->back().number;
}

void SharedList::message(const std::string& payload) {
    if (payload.size() < 2 || (payload[0] != '+' && payload[0] != '-')) return;
    const bool add = payload[0] == '+';
    const auto space = payload.find(' ');
    std::string key = payload.substr(1, space == std::string::npos ? std::string::npos : space - 1);
    std::string value = space == std::string::npos ? "" : payload.substr(space + 1);
    on_store(store_thread_, name_,
             [this, add, key = std::move(key), value = std::move(value)] { apply(add, key, value); });
}

void SharedList::apply(bool add, const std::string& key, const std::string& value) {
    if (!local_.changes) {
        std::lock_guard lock(mu_);
        auto it = known_.find(key);
        if (add && it != known_.end() && it->second == value) return;  // this host's own news, or known
        if (!add && it == known_.end()) return;
        if (add) known_[key] = value;
        else known_.erase(it);
    }
    if (add && local_.add(key, value)) log::info("shared_state: " + key + " " + local_.what + " by another host");
    if (!add && local_.remove(key)) log::info("shared_state: " + key + " no longer " + local_.what + " by another host");
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
            return store.suppress_unlogged(address, reason, store::now_ms());
        },
        [&store](const std::string& address) { return store.unsuppress_unlogged(address); },
        [&store] { return store.suppression_log_end(); },
        [&store](std::uint64_t after) -> std::optional<std::vector<ListChange>> {
            auto changes = store.suppression_changes(after, kSendAtOnce);
            if (!changes) return std::nullopt;
            std::vector<ListChange> out;
            for (auto& c : *changes) out.push_back(ListChange{c.number, c.added, std::move(c.address), std::move(c.reason)});
            return out;
        },
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
        {},
        {},
    };
}

}  // namespace mxlane::qrunner
