// reports: what a report says (bounce, complaint, unsubscribe), read and recorded in the queue store.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "libshared/event_log.hpp"
#include "libshared/store/queue_store.hpp"
#include "milter/report_mail.hpp"

namespace mxlane::milter {

// What was done with a report: recorded (the caller discards the message) or
// not (the caller leaves it to the MTA), with one log line per recipient.
struct ReportOutcome {
    bool recorded = false;
    std::vector<std::string> log;
    std::vector<Event> events;  // what changed in the store (when s.events_on())
};

// Reads the report and records what it says in the store. Throws
// store::StoreError (and LoopKeyError when the loop key cannot be read): the
// caller answers with a 4xx then.
ReportOutcome handle_report(store::QueueStore& q, const ReportSettings& s, const ReportMail& mail, std::int64_t now);

// Appends the events to event_log and, with event_webhook, to its spool; a
// failure is logged (the report stays recorded: events never undo the store).
void write_report_events(const ReportSettings& s, const std::vector<Event>& events);

}  // namespace mxlane::milter
