// event_log: the accounting stream, one JSON line per event (a recipient's result, a finished job), appended to event_log.
#include "libshared/event_log.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "libshared/dates.hpp"
#include "libshared/json.hpp"

namespace mxlane {

std::string event_line(const Event& e) {
    json::object o{{"time", iso_time(e.time_ms)}, {"type", e.type}, {"job", e.job}, {"job_name", e.job_name}};
    if (e.type == "job") {
        o["state"] = e.state;
    } else {
        o["recipient"] = e.recipient;
        o["dsn"] = e.dsn;
        o["class"] = e.cls;
        o["reply"] = e.reply;
        o["host"] = e.host;
        o["source"] = e.source;
        if (!e.fields.empty()) {
            json::object fields;
            for (const auto& [name, value] : e.fields) fields[name] = value;
            o["fields"] = std::move(fields);
        }
    }
    return json::serialize(std::move(o)) + "\n";
}

namespace {

int open_append(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    return fd;
}

}  // namespace

void prepare_event_log(const std::string& path, const std::string& owner) {
    if (path.empty() || ::geteuid() != 0 || ::access(path.c_str(), F_OK) == 0) return;
    int fd = open_append(path);
    if (const struct passwd* pw = owner.empty() ? nullptr : ::getpwnam(owner.c_str())) {
        if (::fchown(fd, pw->pw_uid, pw->pw_gid) != 0) {
            int e = errno;
            ::close(fd);
            throw std::runtime_error(path + ": cannot give it to " + owner + ": " + std::strerror(e));
        }
    }
    ::close(fd);
}

EventLog::~EventLog() {
    if (fd_ >= 0) ::close(fd_);
}

void EventLog::open(const std::string& path) {
    int fd = path.empty() ? -1 : open_append(path);
    std::lock_guard lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    path_ = path;
    on_ = fd >= 0;
}

bool EventLog::reopen(std::string* error) {
    std::lock_guard lock(mu_);
    if (path_.empty()) return true;
    try {
        int fd = open_append(path_);
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
        return true;
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return false;
    }
}

std::string event_lines(const std::vector<Event>& events) {
    std::string text;
    for (const auto& e : events) text += event_line(e);
    return text;
}

std::vector<std::pair<std::string, std::string>> event_field_values(const std::vector<std::string>& wanted,
                                                                    const std::vector<std::string>& names,
                                                                    const std::vector<std::string>& values) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& name : wanted) {
        auto it = std::find(names.begin(), names.end(), name);
        const auto i = static_cast<std::size_t>(it - names.begin());
        out.emplace_back(name, it != names.end() && i < values.size() ? values[i] : "");
    }
    return out;
}

void EventLog::write(const std::vector<Event>& events) {
    if (!events.empty()) write(event_lines(events));
}

void EventLog::write(const std::string& text) {
    if (text.empty()) return;
    std::lock_guard lock(mu_);
    if (fd_ < 0) return;
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a full disk loses events, never deliveries (the log line says what happened)
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace mxlane
