// log: one writer for syslog, stderr and log_file, with syslog's line prefix for files.
#include "libshared/log.hpp"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

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

struct State {
    std::mutex mu;
    Target target = Target::stderr_;
    std::string ident = "mxlane";
    std::string host = "localhost";
    int fd = 2;
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

void emit(int priority, std::string_view prefix, std::string_view msg) {
    State& s = state();
    std::string text(prefix);
    text.append(msg);
    if (s.target == Target::syslog_) {
        syslog(priority, "%s", text.c_str());
        return;
    }
    char stamp[32];
    std::time_t now = std::time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    std::string line = std::string(stamp) + " " + s.host + " " + s.ident + "[" +
                       std::to_string(getpid()) + "]: " + text + "\n";
    std::lock_guard lock(s.mu);
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
        int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            open_stderr(program);
            fatal("cannot open log_file " + file + ": " + std::strerror(errno));
        }
        s.target = Target::file;
        s.fd = fd;
        return;
    }
    static std::string ident;  // openlog keeps the pointer
    ident = s.ident;
    openlog(ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
    s.target = Target::syslog_;
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
