// daemon: detaching from the terminal, and the pid lock that keeps one daemon of a kind per queue.
#pragma once
#include <stdexcept>
#include <string>

namespace mxlane {

// Forks, lets the parent exit, starts a new session, points stdio at /dev/null.
void daemonize();

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
