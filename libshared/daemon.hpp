// daemon: detaching from the terminal, and the pid lock that keeps one daemon of a kind per queue.
#pragma once
#include <stdexcept>
#include <string>

namespace mxlane {

// Detaching in two steps, so that whatever fails at start (the store, the
// socket) still reaches the terminal and the exit status (systemd
// Type=forking reads it): daemonize() forks and returns in the child only, in
// a new session; the parent waits until the child calls detached() (the
// parent exits 0) or ends (the parent exits with its status).
void daemonize();
// In the child: tells the waiting parent that the start went well, points stdio at /dev/null.
void detached();

// Holds an exclusive lock on FILE (with our pid in it) for the process's life.
// Taken before daemonize(): the lock goes with the open file to the child, which
// then calls write_pid(). A lock held by another process is a PidLockBusy
// naming program and its pid.
class PidLock {
public:
    PidLock(const std::string& file, const std::string& program);
    ~PidLock();
    PidLock(const PidLock&) = delete;
    PidLock& operator=(const PidLock&) = delete;

    // Writes this process's pid into the file (again, after a fork).
    void write_pid() const;

private:
    int fd_ = -1;
};

// Another process holds the lock: "another mxlane-milter (pid 42) is running on this queue (FILE)".
class PidLockBusy : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace mxlane
