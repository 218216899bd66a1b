// shared_lists: lists kept alike on every host through Redis (a hash for catch-up, pub/sub for news): suppressions, suspensions.
#pragma once
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "libshared/store/queue_store.hpp"
#include "qrunner/redis_client.hpp"

namespace mxlane::qrunner {

// One list in this host's store, as SharedList sees it: key -> value. Every
// call runs on the store thread.
struct LocalList {
    std::string what;  // for the log: "suppressed", "suspended"
    std::function<std::map<std::string, std::string>()> read;
    std::function<bool(const std::string& key, const std::string& value)> add;  // true: new or changed here
    std::function<bool(const std::string& key)> remove;                         // true: it was here
};

// Each host keeps its own list in its store and works from it alone (the
// claim reads the suppression list there, the scheduler its suspensions), so
// a host never sends to an address it knew of, Redis or not. Whatever writes
// the list - bounces, complaints, unsubscribes, reply rules, mxlanectl -
// sync() finds this host's changes and tells the others: the hash `name`
// holds every entry, a message on the channel `name` tells the hosts at once.
// A host that (re)connects takes the hash's entries it lacks (catch-up) and
// gives the hash the ones it gained meanwhile. A removal made while Redis was
// away is undone by the catch-up when another host still has the entry.
class SharedList {
public:
    SharedList(std::string name, LocalList local, RedisClient& commands, RedisClient& subscriber,
               boost::asio::thread_pool& store_thread);
    // Every second: this host's changes to Redis (and a catch-up still owed).
    void sync();
    // The subscriber connection came (back): what was said while it was away is in the hash.
    void reconnected();

private:
    void catch_up();
    void message(const std::string& payload);  // "+key value" or "-key"
    void publish_changes();                    // on the store thread

    const std::string name_;
    LocalList local_;
    RedisClient& commands_;
    boost::asio::thread_pool& store_thread_;
    std::mutex mu_;                            // guards what follows
    std::map<std::string, std::string> known_;  // entries on both this host's list and Redis's, as last synced
    bool caught_up_ = false;
    bool catching_up_ = false;
};

// The suppression list (mxlane:suppressed: address -> reason) and the
// suspensions (mxlane:suspended: name -> "until reason") of `store`.
LocalList suppression_list(store::QueueStore& store);
LocalList suspension_list(store::QueueStore& store);

}  // namespace mxlane::qrunner
