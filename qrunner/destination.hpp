// destination: one place mail goes (an MX set, or the relay): its queue, connections, rates and pauses.
#pragma once
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "libshared/smtp_reply.hpp"
#include "libshared/source_pools.hpp"
#include "qrunner/backoff.hpp"
#include "qrunner/dns/mx_lookup.hpp"
#include "qrunner/outcome.hpp"
#include "qrunner/shaping.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

// One destination's own state, behind a small interface: its queue of
// transactions, its limits (connections, rates, backoff, suspension: its own
// and its provider's, see Shaping) and its pause when every host was
// unreachable. Everything is guarded by the scheduler's mutex;
// the scheduler decides, the destination keeps count.
class Destination {
public:
    explicit Destination(boost::asio::any_io_executor ex) : wake(ex) {}

    std::string key;          // "mx:a.test,b.test" (domains sharing MX hosts share it; " tls=LEVEL" is
                              // added for a domain whose TLS policy differs from the default) or "relay:[h]:p"
    std::string policy_name;  // what destination_policy lines match: the first domain seen, or the relay label
    Path path = Path::direct;
    std::vector<dns::MxHost> hosts;  // from the latest lookup, in the order to try
    int port = 25;
    // The sending address (source_pools) every connection of it goes from: its
    // key ends in " src=ADDRESS", so that no connection carries another address's
    // (or pool's) mail. Empty: the kernel picks.
    std::optional<SourceAddress> source;

    // ---- the queue: transactions waiting for a connection or for the rate
    void enqueue(OwnedWork w) { queue_.push_back(std::move(w)); }
    bool has_waiting() const { return !queue_.empty(); }
    std::size_t waiting() const { return queue_.size(); }
    OwnedWork take_next();  // the oldest
    OwnedWork take_last();  // the newest (parked first when the rate holds work back)
    std::vector<OwnedWork> take_all();
    // Takes out (and hands to f) every waiting transaction of the given jobs.
    template <class Pred, class F>
    void take_matching(Pred&& matches, F&& f);

    // ---- limits (destination_policy): its own, and its provider's when it has one
    std::shared_ptr<Shaping> own = std::make_shared<Shaping>();
    std::shared_ptr<Shaping> provider;  // shared with the provider's other destinations; null: none
    // The sending address's towards this provider (or destination, without
    // one): what a rule of scope source acts on; null without source_pools.
    std::shared_ptr<Shaping> by_source;
    // The provider's when there is one, else its own: what a rule of scope provider acts on.
    Shaping& widest() { return provider ? *provider : *own; }
    template <class F>
    void each_shaping(F&& f) const {
        f(*own);
        if (provider) f(*provider);
        if (by_source) f(*by_source);
    }
    // A new connection may open now (the caller checks the global limit).
    bool may_open(Clock::time_point now) const;
    // The same without the leases: this host's own limits.
    bool may_open_here(Clock::time_point now) const;
    // A connection opens: takes its rate tokens and a slot. closed() frees the slot.
    void opened(Clock::time_point now);
    void closed();
    int active() const { return own->active; }
    // Connections waiting for max_messages_per_hour to allow their next message.
    int idle() const { return std::max(own->idle, provider ? provider->idle : 0); }
    void idle_started();
    void idle_ended();
    int limit() const { return own->concurrency.limit(); }
    int messages_per_connection() const;
    // Backed off or suspended, itself or its provider: work waits instead of failing.
    bool backing_off(Clock::time_point now) const;
    Clock::time_point holds_until(Clock::time_point now) const;
    // A message token from its own rate and the provider's, or none from either.
    bool take_message(Clock::time_point now);
    // When the n-th message token (connection token) from now is there in both.
    Clock::time_point message_ready_at(Clock::time_point now, double n = 1) const;
    Clock::time_point connection_ready_at(Clock::time_point now) const;
    // When every shaping's lease (shared_state) lets a connection open.
    Clock::time_point lease_ready_at(Clock::time_point now) const;

    // ---- for mxlanectl destinations
    std::atomic<int> on_wire{0};  // recipients of transactions being sent now

    std::size_t waiting_recipients() const;

    // ---- the pause when every host was unreachable: until it ends, new work
    // fails at once with its reply instead of each transaction trying to connect.
    void pause(Clock::time_point until, Reply why, std::string relay);
    // Ends a pause now (mxlanectl flush, a reload); false when there was none.
    bool end_pause(Clock::time_point now);
    bool paused(Clock::time_point now) const { return now < paused_until_; }
    Clock::time_point paused_until() const { return paused_until_; }
    const Reply& pause_reply() const { return pause_reply_; }
    const std::string& pause_relay() const { return pause_relay_; }

    // Wakes the destination when its rate or pause allows more; wake_at is
    // when it is set for, if at all.
    boost::asio::steady_timer wake;
    std::optional<Clock::time_point> wake_at;

private:
    std::deque<OwnedWork> queue_;
    Clock::time_point paused_until_{};
    Reply pause_reply_;
    std::string pause_relay_ = "none";
};

template <class Pred, class F>
void Destination::take_matching(Pred&& matches, F&& f) {
    std::erase_if(queue_, [&](OwnedWork& w) {
        if (!matches(w)) return false;
        f(w);
        return true;
    });
}

}  // namespace mxlane::qrunner
