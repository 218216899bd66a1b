// log: syslog (facility mail), stderr under -f, or log_file; and the Postfix-shaped delivery line.
#pragma once
#include <string>
#include <string_view>

namespace mxlane {
class Config;

namespace log {

// program is the short name ("qrunner", "milter", "ctl"); lines carry
// "<syslog_name>/<program>[pid]". foreground: log to stderr.
void open(std::string_view program, const Config& cfg, bool foreground);
// Before a configuration is read (and for mxlanectl): stderr only.
void open_stderr(std::string_view program);

// libc's syslog() writes here; nothing listening there means lines are lost.
constexpr const char* kSyslogSocket = "/dev/log";
// Why syslog cannot be reached ("/dev/log: No such file or directory"); "" when it can.
std::string syslog_problem();
// Once at start, before detaching: when syslog cannot be reached, says so and
// where the lines go instead, on stderr and (with log_file) in the log.
void note_syslog();

// log_file is opened anew: now (reopen, e.g. on SIGHUP), or before the next line
// (reopen_soon: async-signal-safe, for a signal handler). Without log_file
// nothing happens. A log_file renamed or removed is also reopened by itself
// within 10 s of lines being written.
void reopen();
void reopen_soon();

// Each message goes through safe_text(): callers may put job names, replies and
// addresses into it as they come. A line with to= and status= fields is delivery()'s alone.
void info(std::string_view msg);
void warning(std::string_view msg);   // "warning: ..."
void error(std::string_view msg);     // "error: ..."
[[noreturn]] void fatal(std::string_view msg);  // "fatal: ...", exit 1

// Text from outside made fit for a log line: printable() (no CR, LF, ESC or other
// control, ill-formed UTF-8 as '?'), and "to=" / "status=" (any case) written as
// "to:" / "status:", so that it can never form a field that pflogsumm reads as a delivery.
std::string safe_text(std::string_view text);

// One delivery attempt for one recipient, in Postfix's field order so that
// pflogsumm counts it: "ID: to=<..>, relay=.., delay=.., delays=a/b/c/d, dsn=.., status=.. (..)".
struct Delivery {
    std::string id;         // job id token, no ':' or white space
    std::string to;         // recipient address
    std::string relay;      // "host[ip]:port" or "none"
    double delay = 0;       // seconds since the recipient was queued
    double before_queue = 0, in_queue = 0, connect = 0, transmit = 0;  // delays=a/b/c/d
    std::string dsn;        // "2.0.0"
    std::string status;     // sent, deferred, bounced, expired, relayed
    std::string detail;     // text in parentheses
};
std::string format_delivery(const Delivery& d);
void delivery(const Delivery& d);

// "0.41", "0", "12" like Postfix prints delays.
std::string format_seconds(double s);

}  // namespace log
}  // namespace mxlane
