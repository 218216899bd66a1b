// shared_lists: the suppression list kept alike on every host through Redis (a hash for catch-up, pub/sub for news).
#pragma once
#include <boost/asio/thread_pool.hpp>

#include <mutex>
#include <set>
#include <string>

#include "libshared/store/queue_store.hpp"
#include "qrunner/redis_client.hpp"

namespace mxlane::qrunner {

// Each host keeps its own list in its store (the claim reads it there, so a
// host never sends to an address it knew of, Redis or not). Whatever writes
// it - bounces, complaints, unsubscribes, mxlanectl suppress - this host's
// sync() finds the change and tells the others: the hash mxlane:suppressed
// holds every address, a message on the channel tells the hosts at once.
// A host that (re)connects takes the hash's addresses it lacks (catch-up) and
// sends the hash the ones it gained meanwhile. A removal made while Redis was
// away is undone by the catch-up when another host still lists the address.
class SharedSuppressions {
public:
    // Store calls run on store_thread.
    SharedSuppressions(RedisClient& commands, RedisClient& subscriber, store::QueueStore& store,
                       boost::asio::thread_pool& store_thread);
    // Every second: this host's changes to Redis (and a catch-up still owed).
    void sync();

private:
    void catch_up();
    void message(const std::string& payload);  // "+address reason" or "-address"
    void publish_changes();                    // on the store thread

    RedisClient& commands_;
    store::QueueStore& store_;
    boost::asio::thread_pool& store_thread_;
    std::mutex mu_;                // guards what follows
    std::set<std::string> known_;  // addresses on both this host's list and Redis's, as last synced
    bool caught_up_ = false;       // since the subscriber last connected
    bool catching_up_ = false;
};

}  // namespace mxlane::qrunner
