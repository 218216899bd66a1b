// delivery: one outgoing connection for a destination, sending its queued transactions in turn.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <memory>

#include "qrunner/destination.hpp"
#include "qrunner/outcome.hpp"
#include "qrunner/work.hpp"

namespace mxlane::qrunner {

class Scheduler;

// Opens a session to the destination's hosts in order (the next host on a
// refused connection, a 4xx/5xx greeting or a lost connection), sends `first`
// and then whatever the destination has queued, up to
// max_messages_per_connection per session, and reports each recipient's
// result through its OwnedWork. Whatever happens, every recipient taken gets
// an outcome and the connection's slot is released (Scheduler::connection_done).
boost::asio::awaitable<void> deliver(Scheduler& scheduler, std::shared_ptr<Destination> d, OwnedWork first);

}  // namespace mxlane::qrunner
