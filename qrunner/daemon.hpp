// daemon: detaching from the terminal, and the pid lock that keeps one qrunner per queue.
#pragma once
#include <string>

namespace mxlane::qrunner {

// Detaching in two steps, so that whatever fails at start (the pid lock, the store)
// still reaches the terminal and the exit status (systemd Type=forking reads it):
// daemonize() forks and returns in the child only; the parent waits until the child
// calls detached() (the parent exits 0) or ends (the parent exits with its status).
void daemonize();
// In the child: tells the waiting parent that the start went well, points stdio at /dev/null.
void detached();

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
