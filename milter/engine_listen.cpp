// engine_listen: the listening side of mxlane's milter engine (engine.cpp): the socket
// (smfi_setconn, smfi_opensocket, smfi_setbacklog), the threads that accept the MTA's
// connections and serve one after another (smfi_main), and the stop (smfi_stop, signals).
#include <libmilter/mfapi.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#include "milter/engine.hpp"

namespace {

std::string g_conn;
int g_listen = -1;
int g_backlog = 128;
int g_wake[2] = {-1, -1};  // a stop request (smfi_stop, a signal) wakes smfi_main

// The threads waiting in accept(): one that takes a connection while it is the only one
// starts the next, so a new connection never waits for a thread; past the first, one that
// has waited kIdleSeconds without a connection ends (accept times out: SO_RCVTIMEO).
constexpr int kIdleSeconds = 60;
std::atomic<int> g_waiting{0};
std::atomic<bool> g_stopping{false};

void on_stop_signal(int) {
    int saved = errno;
    if (g_wake[1] >= 0) (void)!::write(g_wake[1], "x", 1);
    errno = saved;
}

bool start_worker();

void worker() {
    for (;;) {
        g_waiting.fetch_add(1);
        int fd = ::accept4(g_listen, nullptr, nullptr, SOCK_CLOEXEC);
        int err = errno;
        int waiting = g_waiting.fetch_sub(1);  // this one included
        if (g_stopping) {
            if (fd >= 0) ::close(fd);
            return;
        }
        if (fd < 0) {
            if (err == EAGAIN || err == EWOULDBLOCK) {
                if (waiting > 1) return;  // idle, and another one waits: enough
                continue;
            }
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;  // a signal, the MTA gave up
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // out of files or memory
            continue;
        }
        // Without a thread to take over, the next connections wait in the backlog until
        // this one is served: slower, nothing lost.
        if (waiting == 1) start_worker();
        mxlane::milter::engine::serve(fd);
    }
}

bool start_worker() {
    try {
        std::thread(worker).detach();
        return true;
    } catch (const std::system_error&) {
        return false;
    }
}

}  // namespace

int smfi_setconn(char* spec) {
    if (!spec || !*spec) return MI_FAILURE;
    std::string s(spec);
    if (!(s.starts_with("unix:") || s.starts_with("local:") || s.starts_with("/") || s.starts_with("inet:") ||
          s.starts_with("inet6:")))
        return MI_FAILURE;
    g_conn = s;
    return MI_SUCCESS;
}

int smfi_setbacklog(int backlog) {
    if (backlog <= 0) return MI_FAILURE;
    g_backlog = backlog;
    if (g_listen >= 0) ::listen(g_listen, g_backlog);
    return MI_SUCCESS;
}

int smfi_opensocket(bool remove_socket) {
    if (g_listen >= 0) return MI_SUCCESS;
    std::string s = g_conn;
    int fd = -1;
    if (s.starts_with("unix:") || s.starts_with("local:") || s.starts_with("/")) {
        std::string path = s.substr(s.starts_with("/") ? 0 : s.find(':') + 1);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        if (path.size() >= sizeof un.sun_path) return errno = ENAMETOOLONG, MI_FAILURE;
        std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
        if (remove_socket) ::unlink(path.c_str());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) goto failed;
    } else {
        // inet:PORT[@HOST], inet6:PORT[@HOST]
        const bool six = s.starts_with("inet6:");
        std::string rest = s.substr(s.find(':') + 1), host;
        if (auto at = rest.find('@'); at != std::string::npos) host = rest.substr(at + 1), rest.erase(at);
        addrinfo hints{}, *ai = nullptr;
        hints.ai_family = six ? AF_INET6 : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), rest.c_str(), &hints, &ai) != 0 || !ai)
            return errno = EINVAL, MI_FAILURE;
        fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int on = 1;
        if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        const bool bound = fd >= 0 && ::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        ::freeaddrinfo(ai);
        if (!bound) goto failed;
    }
    if (::listen(fd, g_backlog) != 0) goto failed;
    g_listen = fd;
    return MI_SUCCESS;
failed:
    int saved = errno;
    if (fd >= 0) ::close(fd);
    errno = saved;
    return MI_FAILURE;
}

int smfi_main() {
    if (g_listen < 0 && smfi_opensocket(false) != MI_SUCCESS) return MI_FAILURE;
    if (g_wake[0] < 0 && ::pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) return MI_FAILURE;
    // Like libmilter: SIGTERM, SIGINT and SIGHUP end smfi_main.
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    timeval idle{kIdleSeconds, 0};
    ::setsockopt(g_listen, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    if (!start_worker()) return MI_FAILURE;
    for (;;) {
        pollfd p{g_wake[0], POLLIN, 0};
        if (::poll(&p, 1, -1) < 0 && errno == EINTR) continue;
        break;
    }
    // shutdown() wakes the threads in accept(); the socket stays open until the process
    // ends, so that none of them can accept on a descriptor reused for something else.
    g_stopping = true;
    ::shutdown(g_listen, SHUT_RDWR);
    return MI_SUCCESS;
}

int smfi_stop() {
    on_stop_signal(0);
    return MI_SUCCESS;
}
