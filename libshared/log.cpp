// log: one writer for syslog, stderr and log_file, with syslog's line prefix for files.
#include "libshared/log.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "libshared/address.hpp"
#include "libshared/config_file.hpp"
#include "libshared/printable.hpp"

namespace mxlane::log {
namespace {

enum class Target { stderr_, syslog_, file };

// log_file is looked at this often while lines are written: renamed or removed
// (rotated without a signal, like `postfix logrotate` does), it is opened anew.
constexpr std::time_t kFileCheckSeconds = 10;

struct State {
    std::mutex mu;
    Target target = Target::stderr_;
    std::string ident = "mxlane";
    std::string host = "localhost";
    int fd = 2;
    std::string file;                        // log_file, for reopening
    std::time_t next_check = 0;              // when to compare file with fd again
    std::atomic<bool> reopen_asked{false};   // set from a signal handler
    bool reopen_failed = false;              // said once until it works again
};

State& state() {
    static State s;
    return s;
}

std::string short_hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    std::string h = buf;
    if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
    return h.empty() ? "localhost" : h;
}

// One line as syslog would write it: "Nov 28 19:54:06 host mxlane/qrunner[4242]: text\n".
std::string file_line(const State& s, std::time_t now, std::string_view text) {
    char stamp[32];
    struct tm tm;
    localtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    return std::string(stamp) + " " + s.host + " " + s.ident + "[" + std::to_string(getpid()) + "]: " +
           std::string(text) + "\n";
}

// O_APPEND, mode 0640; a file created by root goes to mail_owner (the daemon
// writes and reopens it after switching), readable by mail_owner's group.
int open_log_file(const std::string& file, const std::string& owner) {
    struct stat st;
    bool existed = ::stat(file.c_str(), &st) == 0;
    int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || existed || owner.empty() || ::geteuid() != 0) return fd;
    if (const struct passwd* pw = ::getpwnam(owner.c_str())) {
        if (::fchown(fd, pw->pw_uid, pw->pw_gid) != 0) {
            // root keeps it; the daemon still writes through the open descriptor
        }
    }
    return fd;
}

// Called with s.mu held: a rotated log_file (renamed, removed, or a reopen asked
// for) is opened anew. When that fails the old descriptor stays in use.
void check_file(State& s, std::time_t now) {
    bool asked = s.reopen_asked.exchange(false);
    if (!asked && now < s.next_check) return;
    s.next_check = now + kFileCheckSeconds;
    struct stat path_st, fd_st;
    if (!asked && ::stat(s.file.c_str(), &path_st) == 0 && ::fstat(s.fd, &fd_st) == 0 &&
        path_st.st_dev == fd_st.st_dev && path_st.st_ino == fd_st.st_ino)
        return;
    int fd = open_log_file(s.file, {});
    if (fd < 0) {
        if (!s.reopen_failed) {
            std::string why = file_line(s, now, "warning: cannot reopen log_file " + s.file + ": " +
                                                    std::strerror(errno) + "; writing to the file it had open");
            if (::write(s.fd, why.data(), why.size()) < 0) {
                // nowhere else to say it
            }
        }
        s.reopen_failed = true;
        return;
    }
    ::close(s.fd);
    s.fd = fd;
    s.reopen_failed = false;
}

void emit(int priority, std::string_view prefix, std::string_view msg) {
    State& s = state();
    std::string text(prefix);
    text.append(msg);
    if (s.target == Target::syslog_) {
        syslog(priority, "%s", text.c_str());
        return;
    }
    std::time_t now = std::time(nullptr);
    std::string line = file_line(s, now, text);
    std::lock_guard lock(s.mu);
    if (s.target == Target::file) check_file(s, now);
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {  // one write() per line keeps lines whole between processes (O_APPEND)
        ssize_t n = ::write(s.fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace

void open_stderr(std::string_view program) {
    State& s = state();
    s.ident = "mxlane/" + std::string(program);
    s.host = short_hostname();
    s.target = Target::stderr_;
    s.fd = 2;
}

void open(std::string_view program, const Config& cfg, bool foreground) {
    State& s = state();
    s.ident = cfg.get("syslog_name") + "/" + std::string(program);
    s.host = short_hostname();
    if (foreground) {
        s.target = Target::stderr_;
        s.fd = 2;
        return;
    }
    std::string file = cfg.get("log_file");
    if (!file.empty()) {
        int fd = open_log_file(file, cfg.get("mail_owner"));
        if (fd < 0) {
            open_stderr(program);
            fatal("cannot open log_file " + file + ": " + std::strerror(errno));
        }
        s.target = Target::file;
        s.fd = fd;
        s.file = file;
        s.next_check = std::time(nullptr) + kFileCheckSeconds;
        return;
    }
    static std::string ident;  // openlog keeps the pointer
    ident = s.ident;
    openlog(ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
    s.target = Target::syslog_;
}

void reopen() {
    State& s = state();
    if (s.target != Target::file) return;
    s.reopen_asked = true;
    std::lock_guard lock(s.mu);
    check_file(s, std::time(nullptr));
}

void reopen_soon() { state().reopen_asked = true; }

std::string syslog_problem() {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("cannot make a socket: ") + std::strerror(errno);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, kSyslogSocket, sizeof addr.sun_path - 1);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(fd);
    return rc == 0 ? std::string() : std::string(kSyslogSocket) + ": " + std::strerror(err);
}

void note_syslog() {
    State& s = state();
    if (s.target == Target::stderr_) return;  // -f: the terminal is the log
    std::string problem = syslog_problem();
    if (problem.empty()) return;
    std::string where = s.target == Target::file
                            ? "logging to log_file " + s.file + " instead"
                            : "log lines are lost until a syslog daemon (rsyslog, or systemd-journald) "
                              "listens there; set log_file to log to a file (see the README, Logs)";
    std::string text = "syslog is unreachable (" + problem + "); " + where;
    std::fprintf(stderr, "%s: warning: %s\n", s.ident.c_str(), text.c_str());
    if (s.target == Target::file) warning(text);
}

void info(std::string_view msg) { emit(LOG_INFO, "", safe_text(msg)); }
void warning(std::string_view msg) { emit(LOG_WARNING, "warning: ", safe_text(msg)); }
void error(std::string_view msg) { emit(LOG_ERR, "error: ", safe_text(msg)); }
void fatal(std::string_view msg) {
    emit(LOG_CRIT, "fatal: ", safe_text(msg));
    std::exit(1);
}

std::string safe_text(std::string_view text) {
    std::string out = printable(text);
    // pflogsumm finds a delivery anywhere in a line (its pattern is not anchored) by
    // "to=<...>, relay=..., delay=..., ... status=WORD": without "to=" and "status="
    // no text from outside can complete one.
    const std::string lowered = to_lower(out);
    for (std::string_view field : {"to=", "status="})
        for (std::size_t at = lowered.find(field); at != std::string::npos; at = lowered.find(field, at + 1))
            out[at + field.size() - 1] = ':';
    return out;
}

std::string format_seconds(double s) {
    if (!(s > 0)) return "0";
    char buf[32];
    if (s >= 10) std::snprintf(buf, sizeof buf, "%.0f", s);
    else if (s >= 0.1) std::snprintf(buf, sizeof buf, "%.1f", s);
    else std::snprintf(buf, sizeof buf, "%.2f", s);
    std::string out = buf;
    if (out.find('.') != std::string::npos) {
        while (out.back() == '0') out.pop_back();
        if (out.back() == '.') out.pop_back();
    }
    return out;
}

// The fields are written here and only here; every value in them is safe_text().
std::string format_delivery(const Delivery& d) {
    std::string line = safe_text(d.id) + ": to=<" + safe_text(d.to) + ">, relay=" +
                       (d.relay.empty() ? "none" : safe_text(d.relay)) + ", delay=" + format_seconds(d.delay) +
                       ", delays=" + format_seconds(d.before_queue) + "/" + format_seconds(d.in_queue) + "/" +
                       format_seconds(d.connect) + "/" + format_seconds(d.transmit) + ", dsn=" + safe_text(d.dsn) +
                       ", status=" + safe_text(d.status);
    if (!d.detail.empty()) line += " (" + safe_text(d.detail) + ")";
    return line;
}

void delivery(const Delivery& d) { emit(LOG_INFO, "", format_delivery(d)); }

}  // namespace mxlane::log
