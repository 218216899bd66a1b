// daemon: detaching from the terminal, and the pid lock that keeps one daemon of a kind per queue.
#include "libshared/daemon.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mxlane {

void daemonize() {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) std::_Exit(0);
    setsid();
    if (chdir("/") != 0) {
        // Nothing in the daemons uses relative paths; staying put is harmless.
    }
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
    }
}

PidLock::PidLock(const std::string& file, const std::string& program) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + file + ": " + std::strerror(errno));
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
        std::string other = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
        while (!other.empty() && (other.back() == '\n' || other.back() == ' ')) other.pop_back();
        close(fd_);
        fd_ = -1;
        throw PidLockBusy("another " + program + " (pid " + other + ") is running on this queue (" + file + ")");
    }
    write_pid();
}

void PidLock::write_pid() const {
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
        // The lock is what matters; the pid in the file is only for people.
    }
}

PidLock::~PidLock() {
    if (fd_ >= 0) close(fd_);
}

}  // namespace mxlane
