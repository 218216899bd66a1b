// shared_lists: lists kept alike on every host through Redis (a hash, a version and log of changes, pub/sub): suppressions, suspensions.
#pragma once
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "libshared/store/queue_store.hpp"
#include "qrunner/redis_client.hpp"

namespace mxlane::qrunner {

// A change to a list: a key added (with its value) or removed; `number` in the list's own log.
struct ListChange {
    std::uint64_t number = 0;
    bool added = false;
    std::string key, value;
};

// One list in this host's store, as SharedList sees it: key -> value. Every
// call runs on the store thread.
struct LocalList {
    std::string what;  // for the log: "suppressed", "suspended"
    std::function<std::map<std::string, std::string>()> read;
    std::function<bool(const std::string& key, const std::string& value)> add;  // true: new or changed here
    std::function<bool(const std::string& key)> remove;                         // true: it was here
    // Optional (the suppression list, which may hold millions): the list's own
    // log of its changes, so that a second without change reads nothing. The
    // last change's number, and the changes after one (nullopt: no longer
    // kept). add and remove must then leave no entry in it (another host's
    // changes are not sent back). Without it, every sync compares the lists.
    std::function<std::uint64_t()> log_end;
    std::function<std::optional<std::vector<ListChange>>(std::uint64_t after)> changes;
};

// Each host keeps its own list in its store and works from it alone (the
// claim reads the suppression list there, the scheduler its suspensions), so
// a host never sends to an address it knew of, Redis or not. Whatever writes
// the list - bounces, complaints, unsubscribes, reply rules, mxlanectl -
// sync() finds this host's changes and tells the others: the hash `name`
// holds every entry, NAME:version counts the changes and NAME:log keeps the
// last ones (list_log.hpp), a message on the channel `name` tells the hosts
// at once. Every second a host reads what changed since the version it
// applied (nothing when nothing did). A host that (re)connects, or fell
// behind what the logs keep, compares the whole lists once: it takes the
// hash's entries it lacks (catch-up) and gives the hash the ones it gained
// meanwhile. A removal made while Redis was away is undone by that compare
// when another host still has the entry.
class SharedList {
public:
    SharedList(std::string name, LocalList local, RedisClient& commands, RedisClient& subscriber,
               boost::asio::thread_pool& store_thread);
    // Every second: this host's changes to Redis, the others' from it (and a catch-up still owed).
    void sync();
    // The subscriber connection came (back): Redis may have restarted empty: compare the lists.
    void reconnected();

private:
    void catch_up();
    void read_news();
    void message(const std::string& payload);  // "+key value" or "-key"
    // On the store thread: another host's change, into this host's list.
    void apply(bool add, const std::string& key, const std::string& value);
    void publish_changes();                    // on the store thread
    void publish_logged();                     // the same, from the local list's log
    void write(bool add, const std::string& key, const std::string& value);

    const std::string name_, version_key_, log_key_;
    LocalList local_;
    RedisClient& commands_;
    boost::asio::thread_pool& store_thread_;
    std::mutex mu_;                            // guards what follows
    std::map<std::string, std::string> known_;  // without a local log: entries on both this host's list and Redis's
    std::uint64_t seen_ = 0;                    // Redis's version of the list applied here
    std::uint64_t sent_ = 0;                    // with a local log: this host's changes sent up to this number
    bool caught_up_ = false;
    bool catching_up_ = false;
    bool reading_ = false;
};

// The suppression list (mxlane:suppressed: address -> reason) and the
// suspensions (mxlane:suspended: name -> "until reason") of `store`.
LocalList suppression_list(store::QueueStore& store);
LocalList suspension_list(store::QueueStore& store);

}  // namespace mxlane::qrunner
