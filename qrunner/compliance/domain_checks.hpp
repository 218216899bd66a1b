// domain_checks: the qrunner's sender checks of From: domains, run on a thread of their own and kept for a while.
#pragma once
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <string>
#include <vector>

#include "qrunner/compliance/sender_check.hpp"

namespace mxlane::compliance {

// What a check needs, kept alive while it runs (setup.keys points into `owner`).
struct CheckJob {
    std::vector<std::string> dns_servers;
    std::chrono::milliseconds dns_timeout{5000};
    CheckSetup setup;
    std::string pool;  // whose addresses setup.senders are ("": every address); results are kept per domain and pool
    std::shared_ptr<const void> owner;
};

using Rows = std::vector<CheckRow>;

// Checks run one at a time on one thread with a resolver of their own, so
// that neither the event loop nor the store thread asks DNS; asks for one
// domain while its check runs share it. A result is kept for `lifetime`.
class DomainChecks {
public:
    explicit DomainChecks(std::chrono::seconds lifetime) : lifetime_(lifetime) {}
    ~DomainChecks() { stop(); }
    DomainChecks(const DomainChecks&) = delete;
    DomainChecks& operator=(const DomainChecks&) = delete;

    // The rows of `domain` from job.pool's addresses: the kept result, or a check started now.
    // `done` (may be empty) runs on the checker thread when a new check ends.
    std::shared_future<Rows> check(const std::string& domain, CheckJob job,
                                   std::function<void(const std::string&, const Rows&)> done = {});
    // Ends the check in progress (its DNS question gives up) and starts no more.
    void stop();
    // Waits for the checks asked for so far (a --once run's warnings are logged before it ends).
    void finish() { thread_.join(); }

private:
    using Clock = std::chrono::steady_clock;
    struct Kept {
        std::shared_future<Rows> rows;
        Clock::time_point until = Clock::time_point::max();  // max: still running
    };
    Rows run(const std::string& domain, const CheckJob& job);

    std::chrono::seconds lifetime_;
    std::mutex mu_;  // guards kept_ and current_
    std::map<std::pair<std::string, std::string>, Kept> kept_;  // by domain and pool
    ResolverClient* current_ = nullptr;  // the running check's, for stop()
    std::atomic<bool> stopping_{false};
    boost::asio::thread_pool thread_{1};
};

}  // namespace mxlane::compliance
