// destination: one place mail goes (an MX set, or the relay): its queue, connection count and pause.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "libshared/smtp_reply.hpp"
#include "qrunner/dns/mx_lookup.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

struct Destination {
    std::string key;          // "mx:a.test,b.test" (domains sharing MX hosts share it) or "relay:[h]:p"
    std::string policy_name;  // what destination_policy lines match: the first domain seen, or the relay label
    Path path = Path::direct;
    std::vector<dns::MxHost> hosts;  // from the latest lookup, in the order to try
    int port = 25;
    std::deque<Work> queue;   // transactions waiting for a connection
    int active = 0;           // connections open or opening
    int limit = 1;            // destination_concurrency
    int messages_per_connection = 100;

    // Every host unreachable: until this time new work fails at once with
    // pause_reply instead of each transaction trying to connect again.
    Clock::time_point paused_until{};
    Reply pause_reply;
    std::string pause_relay = "none";

    bool paused(Clock::time_point now) const { return now < paused_until; }
};

}  // namespace mxlane::qrunner
