// outcome: the one way delivery reports what became of claimed recipients, and the owners that make sure it does.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "libshared/smtp_reply.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {
class Destination;
}

namespace mxlane::qrunner {

// What the scheduler does with a transaction's result (implemented by Scheduler;
// tests give a double).
class Outcomes {
public:
    virtual ~Outcomes() = default;
    // One reply per recipient (the last one repeats when fewer are given);
    // details[i], when given, is the log text for replies[i].
    virtual void conclude(const Work& w, const std::vector<Reply>& replies, const std::string& relay,
                          double connect_s, double transmit_s, const std::vector<std::string>& details) = 0;
    // Not tried: due again at due_ms, attempts unchanged.
    // (put_back above is this at the current time.)
    virtual void put_back(const Work& w, std::int64_t due_ms) = 0;
    // A connection to d has ended: its slot is free again.
    virtual void connection_done(const std::shared_ptr<Destination>& d) = 0;
};

// The link from owners to their Outcomes. Closed when the scheduler goes away
// (or abandons what is in flight at the end of shutdown_timeout): owners that
// end after that report nothing, and their recipients, still marked in flight
// in the store, are due again at the next start (recover_inflight).
class OutcomeGate {
public:
    explicit OutcomeGate(Outcomes& sink) : sink_(&sink) {}
    void close() { closed_ = true; }
    bool closed() const { return closed_; }
    Outcomes* sink() const { return closed_ ? nullptr : sink_; }

private:
    Outcomes* sink_;
    std::atomic<bool> closed_{false};
};

// Owns claimed recipients from the claim until their outcome is reported.
// Whatever ends its life first - a reply, an exception, a coroutine torn down,
// a lost connection - every recipient gets exactly one outcome: when none was
// reported, each one is deferred with the reason (4.3.0) and logged.
class OwnedWork {
public:
    OwnedWork() = default;
    OwnedWork(std::shared_ptr<OutcomeGate> gate, Work w) : gate_(std::move(gate)), work_(std::move(w)) {}
    OwnedWork(OwnedWork&& o) noexcept
        : gate_(std::move(o.gate_)), work_(std::exchange(o.work_, std::nullopt)), failure_(std::move(o.failure_)) {}
    OwnedWork& operator=(OwnedWork&& o) noexcept;
    OwnedWork(const OwnedWork&) = delete;
    OwnedWork& operator=(const OwnedWork&) = delete;
    ~OwnedWork();

    explicit operator bool() const { return work_.has_value(); }
    const Work& work() const { return *work_; }
    Work& work() { return *work_; }

    // Each reports once; the owner is empty afterwards.
    void conclude(const std::vector<Reply>& replies, const std::string& relay, double connect_s = 0,
                  double transmit_s = 0, const std::vector<std::string>& details = {});
    void conclude_all(const Reply& why, const std::string& relay);
    void put_back(std::int64_t due_ms);
    // The reason given when nothing was reported (an exception's text, say).
    void set_failure(std::string why) { failure_ = std::move(why); }

private:
    void fail_unreported() noexcept;

    std::shared_ptr<OutcomeGate> gate_;
    std::optional<Work> work_;
    std::string failure_;
};

// A connection slot of a destination, released exactly once however the
// connection ends.
class ConnectionSlot {
public:
    ConnectionSlot(std::shared_ptr<OutcomeGate> gate, std::shared_ptr<Destination> d)
        : gate_(std::move(gate)), destination_(std::move(d)) {}
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;
    ~ConnectionSlot();

private:
    std::shared_ptr<OutcomeGate> gate_;
    std::shared_ptr<Destination> destination_;
};

}  // namespace mxlane::qrunner
