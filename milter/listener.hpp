// listener: the milter's socket: a live one is never taken over, a stale one is, ours alone is removed.
#pragma once
#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace mxlane::milter {

// The path of a unix-domain milter_socket ("" for inet and inet6).
std::string unix_path(const std::string& spec);

class Listener {
public:
    // Creates the socket's directory if missing; a socket file nobody accepts on
    // (left by a milter that was killed) is removed, one where a process still
    // accepts (another milter) is a std::runtime_error and stays as it is; then
    // listens (smfi_setconn, smfi_opensocket) and makes a unix socket mode 0660.
    explicit Listener(const std::string& spec);

    // Removes the unix socket if the file at its path is still the one this
    // process made. (libmilter itself, running as a user other than root,
    // removes whatever socket is at the path when smfi_main ends; since a second
    // milter never starts on a live socket, that is this milter's own.)
    void remove() const;

private:
    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// What is worth a warning at start about where the milter listens: an inet
// socket (anyone on the host who can reach the port can hand it jobs), and a
// unix socket outside Postfix's queue directory while Postfix runs smtpd
// chrooted there (smtpd cannot reach it: all mail would get 4xx). Postfix is
// asked with `postconf`; without Postfix nothing is said about it.
std::vector<std::string> socket_warnings(const std::string& spec);

}  // namespace mxlane::milter
