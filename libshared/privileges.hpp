// privileges: a daemon started as root gives the queue and its socket to mail_owner, then becomes it.
#pragma once
#include <sys/types.h>

#include <stdexcept>
#include <string>

namespace mxlane {
class Config;

namespace privileges {

// One line saying what is wrong ("FILE: mail_owner = x: no such user").
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What a daemon started as root does, in two steps, because the milter must
// create its socket (as root, in a root-owned directory) between them:
//
//   DropPlan plan = DropPlan::prepare(cfg, socket_path);  // mail_owner looked up, queue given to it
//   ... listen, open the log (as root: log_file may be a root-owned file) ...
//   plan.drop();                                          // socket given, setgroups/setgid/setuid
//
// Both steps do nothing when the process is not root. The store must be opened
// only after drop(), so that every file Berkeley DB creates belongs to mail_owner.
class DropPlan {
public:
    DropPlan() = default;

    // As root: resolves mail_owner (an unknown user, root, or a user whose
    // group is root is an Error naming the parameter); creates queue_directory
    // (0750) if missing and gives it and everything in it to mail_owner; for a
    // unix socket path, creates its directory (0755) if missing and gives it to
    // mail_owner when nothing but the socket lives there (like /run/mxlane).
    static DropPlan prepare(const Config& cfg, const std::string& socket_path = {});

    // As root: gives the socket (now created) to mail_owner and its group, then
    // setgroups (to the group alone), setgid, setuid; checks that root cannot be
    // regained; sets umask 007 (the group of mail_owner reads the queue, and
    // joins its Berkeley DB environment). Throws Error when any step fails.
    void drop() const;

    bool active() const { return active_; }
    const std::string& user() const { return user_; }
    uid_t uid() const { return uid_; }
    gid_t gid() const { return gid_; }

private:
    bool active_ = false;
    std::string user_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    std::string socket_path_;
};

// For mxlanectl run as root: when queue_directory exists and belongs to a user
// other than root (the daemons gave it to mail_owner), become that user and the
// directory's group, so that what mxlanectl adds to the store stays theirs.
// Does nothing when not root or when the directory is missing or root's.
// Also sets umask 007, like the daemons: the store stays readable by the group.
void act_as_queue_owner(const std::string& queue_directory);

// For the mxlanectl commands that change the queue: members of mail_owner's
// group may read it, only root and the queue's owner may change it. Throws an
// Error naming `command` and the owner otherwise.
void require_queue_owner(const std::string& queue_directory, const std::string& command);

}  // namespace privileges
}  // namespace mxlane
