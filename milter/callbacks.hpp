// callbacks: the xxfi_* table; thin steps that feed the message context and ask the intake policy.
#pragma once
#include <libmilter/mfapi.h>

#include <cstddef>
#include <string>

#include "milter/enqueue.hpp"
#include "milter/intake_policy.hpp"
#include "milter/reports.hpp"

namespace mxlane::milter {

// What every connection shares; fixed before the first connection.
struct MilterSettings {
    IntakePolicy policy;
    std::string queue_directory;
    std::string myhostname;      // a message with mxlane's Received: line for it is never captured
    std::size_t size_limit = 0;  // message_size_limit
    bool hold = false;           // intercept_action = hold
    Intake* intake = nullptr;
    ReportSettings reports;      // bounces, unsubscribes and complaints read at their addresses
};

// A relayed message's token must be younger than this to be let through: the
// host MTA shows it to the milter while the qrunner is still handing it over.
constexpr std::int64_t kLoopTokenMaxAge = 3600;

// The filter description for smfi_register; settings must outlive smfi_main.
smfiDesc filter_description(const MilterSettings& settings);

}  // namespace mxlane::milter
