// daemon: detaching from the terminal, and the pid lock that keeps one daemon of a kind per queue.
#include "libshared/daemon.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mxlane {

namespace {
int ready_fd = -1;  // the child's end of the pipe its parent waits on
}

void daemonize() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) {
        close(fds[1]);
        char byte = 0;
        ssize_t n;
        while ((n = read(fds[0], &byte, 1)) < 0 && errno == EINTR) {
        }
        if (n == 1) std::_Exit(0);
        int status = 0;  // the child ended before it was ready; it said why on stderr
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        std::_Exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
    }
    close(fds[0]);
    ready_fd = fds[1];
    setsid();
    if (chdir("/") != 0) {
        // Nothing in the daemons uses relative paths; staying put is harmless.
    }
}

void detached() {
    if (ready_fd < 0) return;
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
    }
    char byte = 1;
    if (write(ready_fd, &byte, 1) != 1) {
        // The parent is gone; nothing waits for the answer.
    }
    close(ready_fd);
    ready_fd = -1;
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
