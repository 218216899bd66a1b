// daemon: detaching from the terminal, and the pid lock that keeps one qrunner per queue.
#pragma once
#include <string>

namespace mxlane::qrunner {

// Forks, lets the parent exit, starts a new session, points stdio at /dev/null.
void daemonize();

// Holds an exclusive lock on FILE (with our pid in it) for the process's life;
// throws when another process holds it.
class PidLock {
public:
    explicit PidLock(const std::string& file);
    ~PidLock();
    PidLock(const PidLock&) = delete;
    PidLock& operator=(const PidLock&) = delete;

private:
    int fd_ = -1;
};

}  // namespace mxlane::qrunner
