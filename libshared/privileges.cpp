// privileges: a daemon started as root gives the queue and its socket to mail_owner, then becomes it.
#include "libshared/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "libshared/config_file.hpp"

namespace fs = std::filesystem;

namespace mxlane::privileges {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// lchown only when the owner differs: cheap on a queue that is already right,
// and never follows a symbolic link out of the directory.
void give(const std::string& path, const struct stat& st, uid_t uid, gid_t gid) {
    if (st.st_uid == uid && st.st_gid == gid) return;
    if (::lchown(path.c_str(), uid, gid) != 0)
        throw Error("cannot give " + path + " to mail_owner: " + errno_text(errno));
}

void give(const std::string& path, uid_t uid, gid_t gid) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0)
        throw Error("cannot give " + path + " to mail_owner: " + errno_text(errno));
    give(path, st, uid, gid);
}

// An mxlane queue, or a directory with nothing in it yet. Anything else (a
// queue_directory pointing at /var/spool by mistake) is not chowned wholesale.
bool looks_like_queue(const std::string& dir) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw Error("cannot read queue_directory " + dir + ": " + ec.message());
    if (it == fs::directory_iterator()) return true;
    for (const char* marker : {"meta.db", "__db.register", "loop.key", "qrunner.pid", "milter.pid"})
        if (fs::exists(fs::path(dir) / marker, ec)) return true;
    return false;
}

void give_queue_directory(const std::string& dir, const std::string& user, uid_t uid, gid_t gid) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        // A missing parent is left for the store to report in its own words
        // (the milter keeps running and answers 4xx until the store opens).
        if (errno != ENOENT || ::mkdir(dir.c_str(), 0750) != 0) return;
        // Whatever umask root had (a test harness may strip the x bits).
        if (::chmod(dir.c_str(), 0750) != 0 || ::stat(dir.c_str(), &st) != 0) return;
    }
    if (!S_ISDIR(st.st_mode)) return;  // the store reports "not a directory"
    if (!looks_like_queue(dir))
        throw Error("queue_directory " + dir + " holds files that are not an mxlane queue; "
                    "not giving it to mail_owner " + user);
    give(dir, st, uid, gid);
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string path = it->path().string();
        if (::lstat(path.c_str(), &st) != 0) continue;  // removed meanwhile
        give(path, st, uid, gid);
        // A queue made before the group could read it (files 0640): Berkeley DB's
        // files become 0660. A file the group cannot read (loop.key) stays so.
        if (S_ISREG(st.st_mode) && (st.st_mode & 0660) == 0640) ::chmod(path.c_str(), (st.st_mode & 07777) | 0020);
    }
    if (ec) throw Error("cannot walk queue_directory " + dir + ": " + ec.message());
}

// The socket's directory becomes mail_owner's when the milter makes it, or
// when it holds nothing but (a stale copy of) the socket: then libmilter can
// remove the socket when the milter stops. A shared directory is left alone.
void give_socket_directory(const std::string& socket_path, uid_t uid, gid_t gid) {
    fs::path sock(socket_path);
    fs::path dir = sock.parent_path();
    if (dir.empty() || dir == "/") return;
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT) return;
        if (::mkdir(dir.c_str(), 0755) != 0 || ::chmod(dir.c_str(), 0755) != 0)
            return;  // the milter says why when it listens
        give(dir.string(), uid, gid);
        return;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != 0) return;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().filename() != sock.filename()) return;
    if (!ec) give(dir.string(), st, uid, gid);
}

}  // namespace

DropPlan DropPlan::prepare(const Config& cfg, const std::string& socket_path) {
    DropPlan plan;
    if (::geteuid() != 0) return plan;
    std::string name = cfg.get("mail_owner");
    std::string where = cfg.file().empty() ? "" : cfg.file() + ": ";
    if (name.empty()) throw Error(where + "mail_owner is empty; the daemons must not run as root");

    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
    struct passwd pw;
    struct passwd* found = nullptr;
    int err;
    while ((err = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE)
        buf.resize(buf.size() * 2);
    if (err != 0)
        throw Error(where + "mail_owner = " + name + ": cannot look up the user: " + errno_text(err));
    if (!found)
        throw Error(where + "mail_owner = " + name + ": no such user (create it, e.g. adduser --system --group "
                    "--home " + cfg.get("queue_directory") + " --no-create-home " + name + ")");
    // Postfix refuses a root mail_owner too: the daemons parse mail from anyone.
    if (pw.pw_uid == 0) throw Error(where + "mail_owner = " + name + ": must not be root (uid 0)");
    if (pw.pw_gid == 0) throw Error(where + "mail_owner = " + name + ": its group must not be root (gid 0)");

    plan.active_ = true;
    plan.user_ = name;
    plan.uid_ = pw.pw_uid;
    plan.gid_ = pw.pw_gid;
    plan.socket_path_ = socket_path;
    give_queue_directory(cfg.get("queue_directory"), name, plan.uid_, plan.gid_);
    if (!socket_path.empty()) give_socket_directory(socket_path, plan.uid_, plan.gid_);
    return plan;
}

void DropPlan::drop() const {
    if (!active_) return;
    if (!socket_path_.empty()) {
        struct stat st;
        if (::lstat(socket_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
            give(socket_path_, st, uid_, gid_);
    }
    // setgroups first (it needs root), then the group, then the user: once the
    // uid is gone, nothing else can be changed (Postfix's set_ugid order).
    if (::setgroups(1, &gid_) != 0) throw Error("setgroups for mail_owner " + user_ + ": " + errno_text(errno));
    if (::setgid(gid_) != 0) throw Error("setgid for mail_owner " + user_ + ": " + errno_text(errno));
    if (::setuid(uid_) != 0) throw Error("setuid to mail_owner " + user_ + ": " + errno_text(errno));
    if (::setuid(0) == 0 || ::geteuid() == 0)
        throw Error("still able to become root after switching to mail_owner " + user_);
    // Directories the daemons make later (tmp/) need their x bits whatever umask
    // root started them with; nothing the queue holds is for other users. The
    // group reads the queue (mxlanectl jobs for operators in mail_owner's group):
    // Berkeley DB's region and log files must be group read-writable for a
    // reader to join the environment.
    ::umask(007);
}

void act_as_queue_owner(const std::string& queue_directory) {
    if (::geteuid() != 0) return;
    struct stat st;
    if (::stat(queue_directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid == 0) return;
    gid_t gid = st.st_gid;
    if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(st.st_uid) != 0)
        throw Error("cannot become the owner of queue_directory " + queue_directory + " (uid " +
                    std::to_string(st.st_uid) + "): " + errno_text(errno));
    ::umask(007);
}

void require_queue_owner(const std::string& queue_directory, const std::string& command) {
    uid_t me = ::geteuid();
    struct stat st;
    if (me == 0 || ::stat(queue_directory.c_str(), &st) != 0 || st.st_uid == me) return;
    struct passwd* pw = ::getpwuid(st.st_uid);
    std::string owner = pw ? pw->pw_name : "uid " + std::to_string(st.st_uid);
    throw Error(command + " changes the queue: only root and mail_owner (" + owner +
                ") may; the group may read it (jobs, job, recipients, export, config)");
}

}  // namespace mxlane::privileges
