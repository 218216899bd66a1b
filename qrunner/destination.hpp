// destination: one place mail goes (an MX set, or the relay): its queue, connections, rates and pauses.
#pragma once
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "libshared/smtp_reply.hpp"
#include "qrunner/backoff.hpp"
#include "qrunner/dns/mx_lookup.hpp"
#include "qrunner/outcome.hpp"
#include "qrunner/throttle.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

// Everything but `wake` is guarded by the scheduler's mutex.
struct Destination {
    explicit Destination(boost::asio::any_io_executor ex) : wake(ex) {}

    std::string key;          // "mx:a.test,b.test" (domains sharing MX hosts share it; " tls=LEVEL" is
                              // added for a domain whose TLS policy differs from the default) or "relay:[h]:p"
    std::string policy_name;  // what destination_policy lines match: the first domain seen, or the relay label
    Path path = Path::direct;
    std::vector<dns::MxHost> hosts;  // from the latest lookup, in the order to try
    int port = 25;
    std::deque<OwnedWork> queue;  // transactions waiting for a connection or for the rate
    int active = 0;           // connections open or opening
    int idle = 0;             // of those, waiting for max_messages_per_hour to allow the next
    int messages_per_connection = 100;

    // Shaping (destination_policy): destination_concurrency after backoff,
    // max_messages_per_hour (one token per transaction), max_connections_per_minute.
    AdaptiveConcurrency concurrency;
    TokenBucket messages;
    TokenBucket connections;
    Clock::duration backoff_pause = std::chrono::minutes(5);  // destination_backoff

    // Wakes the destination when its rate or pause allows more (guarded by
    // the scheduler's mutex too); wake_at is when it is set for, if at all.
    boost::asio::steady_timer wake;
    std::optional<Clock::time_point> wake_at;

    // Every host unreachable: until this time new work fails at once with
    // pause_reply instead of each transaction trying to connect again.
    Clock::time_point paused_until{};
    Reply pause_reply;
    std::string pause_relay = "none";

    bool paused(Clock::time_point now) const { return now < paused_until; }
    int limit() const { return concurrency.limit(); }
    // Paused by a throttling reply: work waits instead of failing.
    bool backing_off(Clock::time_point now) const { return concurrency.paused(now); }
};

}  // namespace mxlane::qrunner
