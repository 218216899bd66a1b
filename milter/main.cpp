// main: mxlane-milter: options, configuration, the listening socket, the store, and smfi_main.
#include <fcntl.h>
#include <libmilter/mfapi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "libshared/config_file.hpp"
#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/privileges.hpp"
#include "milter/callbacks.hpp"
#include "milter/enqueue.hpp"

using namespace mxlane;

namespace {

const char kUsage[] = "usage: mxlane-milter [-c FILE] [-f]\n";

// Before logging is set up, problems go to stderr as one line.
[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "mxlane-milter: fatal: %s\n", why.c_str());
    std::exit(1);
}

// The path of a unix-domain milter_socket ("" for inet and inet6).
std::string unix_path(const std::string& spec) {
    if (spec.starts_with("unix:")) return spec.substr(5);
    if (spec.starts_with("local:")) return spec.substr(6);
    if (spec.starts_with("/")) return spec;
    return {};
}

// A stale socket from an earlier run is removed; anything else in its place is an error.
void prepare_unix_socket(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
        std::string dir = path.substr(0, slash);
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
            die("cannot create " + dir + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) die(path + " exists and is not a socket");
        ::unlink(path.c_str());
    }
}

void listen_on(const std::string& spec) {
    std::string path = unix_path(spec);
    if (!path.empty()) prepare_unix_socket(path);
    if (smfi_setconn(const_cast<char*>(spec.c_str())) != MI_SUCCESS) die("bad milter_socket: " + spec);
    if (smfi_opensocket(true) != MI_SUCCESS)
        die("cannot listen on " + spec + (errno ? std::string(": ") + std::strerror(errno) : ""));
    // The MTA's smtpd runs unprivileged (Postfix: user postfix) and connects through
    // mail_owner's group; nobody else may write to the socket (and so submit jobs).
    if (!path.empty() && ::chmod(path.c_str(), 0660) != 0)
        die("cannot chmod " + path + ": " + std::strerror(errno));
}

void daemonise() {
    pid_t pid = fork();
    if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) std::_Exit(0);
    setsid();
    if (chdir("/") != 0) {
        // Nothing in the milter uses relative paths; staying put is harmless.
    }
    int fd = ::open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) ::close(fd);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string file;
    bool foreground = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:f")) != -1) {
        switch (opt) {
            case 'c': file = optarg; break;
            case 'f': foreground = true; break;
            default: std::fputs(kUsage, stderr); return 1;
        }
    }
    if (optind != argc) {
        std::fputs(kUsage, stderr);
        return 1;
    }
    if (file.empty()) file = Config::default_path();

    Config cfg;
    milter::MilterSettings settings;
    try {
        cfg = Config::load(file);
        settings.policy = milter::IntakePolicy::from_config(cfg);
    } catch (const ConfigError& e) {
        die(e.what());
    }
    settings.queue_directory = cfg.get("queue_directory");
    settings.size_limit = static_cast<std::size_t>(cfg.integer("message_size_limit"));
    settings.hold = cfg.get("intercept_action") == "hold";
    milter::Intake intake(settings.queue_directory);
    settings.intake = &intake;

    std::signal(SIGPIPE, SIG_IGN);
    smfiDesc desc = milter::filter_description(settings);
    if (smfi_register(desc) != MI_SUCCESS) die("smfi_register failed");
    std::string spec = cfg.get("milter_socket");
    privileges::DropPlan drop;  // started as root: the queue and the socket become mail_owner's
    try {
        drop = privileges::DropPlan::prepare(cfg, unix_path(spec));
    } catch (const privileges::Error& e) {
        die(e.what());
    }
    listen_on(spec);
    smfi_setbacklog(128);

    // Logging first, so that its own errors still reach the terminal; the
    // store after the fork, since Berkeley DB registers the process that opens it.
    log::open("milter", cfg, foreground);
    try {
        drop.drop();
    } catch (const privileges::Error& e) {
        log::fatal(e.what());
    }
    if (!foreground) daemonise();
    if (std::string err = intake.try_open(); !err.empty())
        log::error(err + "; bulk mail gets 4xx until the queue store opens");
    try {
        loop_key(settings.queue_directory);
    } catch (const LoopKeyError& e) {
        log::error(std::string(e.what()) + "; bulk mail gets 4xx until it can be read");
    }
    log::info("starting: listening on " + spec + ", intercept_action=" + cfg.get("intercept_action") +
              ", queue_directory=" + settings.queue_directory);

    int rc = smfi_main();  // returns on SIGTERM, SIGINT or SIGHUP (libmilter calls smfi_stop)
    intake.close();        // waits for commits in progress
    // The MTA must not find a socket nobody listens on (it would wait for the
    // connect timeout instead of failing at once).
    if (std::string path = unix_path(spec); !path.empty()) ::unlink(path.c_str());
    log::info("stopped");
    return rc == MI_SUCCESS ? 0 : 1;
}
