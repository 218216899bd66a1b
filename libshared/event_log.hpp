// event_log: the accounting stream, one JSON line per event (a recipient's result, a finished job), appended to event_log.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace mxlane {

// What happened to one recipient (type delivered, deferred, bounced, expired,
// relayed, suppressed) or to a job (type job, state in `dsn`-less form: the
// job's state word in `state`).
struct Event {
    std::string type;
    std::int64_t time_ms = 0;
    std::string job;        // "J00002A"
    std::string job_name;
    std::string recipient;
    std::string dsn;
    std::string cls;        // the failure's class (bounce_class), "" for none
    std::string reply;
    std::string host;
    std::string source;     // the address mail went out from ("" until sending addresses exist)
    std::string state;      // type job: "done", "held"
    // event_fields: personalisation columns by name, in event_fields order ("fields" in the line).
    std::vector<std::pair<std::string, std::string>> fields;
};

// One line of JSON: {"time":"2026-12-02T12:00:00.123Z","type":...}; every
// string made valid UTF-8, control characters escaped: one event, one line.
std::string event_line(const Event& e);
std::string event_lines(const std::vector<Event>& events);

// event_fields' columns of a recipient: for each wanted name, its value among
// the message's column names and the recipient's values ("" where it has none).
std::vector<std::pair<std::string, std::string>> event_field_values(const std::vector<std::string>& wanted,
                                                                    const std::vector<std::string>& names,
                                                                    const std::vector<std::string>& values);

// Before the daemon gives up root: a missing event_log file is created
// (mode 0640) and given to `owner` (mail_owner), who opens it, and opens it
// again after rotation. Throws std::runtime_error "PATH: reason".
void prepare_event_log(const std::string& path, const std::string& owner);

// The file event_log names, opened for appending (created mode 0640). Each
// write() of a batch is one write(2) of whole lines to an O_APPEND file, so
// lines of several writers never interleave. Thread-safe.
class EventLog {
public:
    EventLog() = default;
    ~EventLog();
    EventLog(const EventLog&) = delete;
    EventLog& operator=(const EventLog&) = delete;

    // Opens `path` (empty: the log is off). Throws std::runtime_error "PATH: reason".
    void open(const std::string& path);
    // The same file anew (after rotation, on SIGHUP); false, with the old file kept, when it fails.
    bool reopen(std::string* error = nullptr);
    bool on() const { return on_.load(std::memory_order_relaxed); }  // no lock: asked per result
    void write(const std::vector<Event>& events);
    void write(const std::string& lines);  // event_line()s, whole

private:
    mutable std::mutex mu_;
    int fd_ = -1;
    std::atomic<bool> on_{false};
    std::string path_;
};

}  // namespace mxlane
