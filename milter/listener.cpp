// listener: the milter's socket: a live one is never taken over, a stale one is, ours alone is removed.
#include "milter/listener.hpp"

#include <libmilter/mfapi.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

namespace mxlane::milter {
namespace {

namespace fs = std::filesystem;

// Does a process accept connections on the unix socket at path?
bool someone_listens(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return false;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

void prepare_unix_socket(const std::string& path) {
    fs::path dir = fs::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + " exists and is not a socket");
    if (someone_listens(path))
        throw std::runtime_error("a running process (another mxlane-milter?) listens on " + path +
                                 "; not taking its socket over");
    ::unlink(path.c_str());  // left by a milter that did not stop cleanly
}

// The output of a command run through the shell, without its last line end ("" when it fails).
std::string command_output(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (::pclose(p) != 0) return {};
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

bool is_under(const std::string& path, const std::string& dir) {
    std::string d = dir.ends_with('/') ? dir : dir + "/";
    return path.starts_with(d);
}

// The smtpd services of `postconf -F` output that run chrooted ("smtp/inet").
std::vector<std::string> chrooted_smtpd(const std::string& postconf_F) {
    // "smtp/inet/chroot = y", "smtp/inet/command = smtpd": service/type/field = value
    std::map<std::string, std::map<std::string, std::string>> services;
    std::istringstream in(postconf_F);
    std::string line;
    while (std::getline(in, line)) {
        auto eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        std::string key = line.substr(0, eq);
        auto slash = key.rfind('/');
        if (slash == std::string::npos) continue;
        services[key.substr(0, slash)][key.substr(slash + 1)] = line.substr(eq + 3);
    }
    std::vector<std::string> out;
    for (const auto& [name, fields] : services) {
        auto cmd = fields.find("command"), chroot = fields.find("chroot");
        if (cmd == fields.end() || chroot == fields.end() || chroot->second != "y") continue;
        if (cmd->second == "smtpd" || cmd->second.starts_with("smtpd ")) out.push_back(name);
    }
    return out;
}

}  // namespace

std::string unix_path(const std::string& spec) {
    if (spec.starts_with("unix:")) return spec.substr(5);
    if (spec.starts_with("local:")) return spec.substr(6);
    if (spec.starts_with("/")) return spec;
    return {};
}

Listener::Listener(const std::string& spec) : path_(unix_path(spec)) {
    if (!path_.empty()) prepare_unix_socket(path_);
    if (smfi_setconn(const_cast<char*>(spec.c_str())) != MI_SUCCESS)
        throw std::runtime_error("bad milter_socket: " + spec);
    // false: libmilter would otherwise remove whatever is at the path, a live socket too.
    if (smfi_opensocket(false) != MI_SUCCESS)
        throw std::runtime_error("cannot listen on " + spec + (errno ? std::string(": ") + std::strerror(errno) : ""));
    if (path_.empty()) return;
    // The MTA's smtpd runs unprivileged (Postfix: user postfix) and connects through
    // mail_owner's group; nobody else may write to the socket (and so submit jobs).
    if (::chmod(path_.c_str(), 0660) != 0)
        throw std::runtime_error("cannot chmod " + path_ + ": " + std::strerror(errno));
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
}

void Listener::remove() const {
    struct stat st;
    if (path_.empty() || ::lstat(path_.c_str(), &st) != 0) return;
    if (st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

std::vector<std::string> socket_warnings(const std::string& spec) {
    std::vector<std::string> out;
    std::string path = unix_path(spec);
    if (path.empty()) {
        out.push_back("milter_socket = " + spec +
                      " is a TCP socket: any local process that reaches it can hand mxlane bulk jobs "
                      "past the MTA's checks; prefer a unix socket inside Postfix's queue directory "
                      "(README: Attaching to Postfix)");
        return out;
    }
    std::string queue = command_output("postconf -h queue_directory 2>/dev/null");
    if (queue.empty()) return out;  // no Postfix here (or none that answers)
    if (is_under(path, queue)) return out;
    std::string services;
    for (const auto& s : chrooted_smtpd(command_output("postconf -F 2>/dev/null")))
        services += (services.empty() ? "" : ", ") + s;
    if (services.empty()) return out;
    out.push_back("milter_socket " + path + " is outside " + queue + ", but Postfix runs smtpd chrooted there (" +
                  services + " in master.cf): smtpd cannot reach the socket and all mail through it gets 4xx; "
                  "use milter_socket = unix:" + queue + "/mxlane/milter.sock with smtpd_milters = "
                  "unix:mxlane/milter.sock");
    return out;
}

}  // namespace mxlane::milter
