// main: mxlane-milter: options, configuration, the listening socket, the store, and smfi_main.
#include <libmilter/mfapi.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "libshared/config_file.hpp"
#include "libshared/daemon.hpp"
#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/params.hpp"
#include "libshared/privileges.hpp"
#include "milter/callbacks.hpp"
#include "milter/enqueue.hpp"
#include "milter/listener.hpp"

using namespace mxlane;

namespace {

const char kUsage[] = "usage: mxlane-milter [-c FILE] [-f]\n";

// Before logging is set up, problems go to stderr as one line.
[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "mxlane-milter: fatal: %s\n", why.c_str());
    std::exit(1);
}

// Says it where the admin starting the milter sees it, and in the log.
void start_warning(const std::string& text, bool foreground) {
    if (!foreground) std::fprintf(stderr, "mxlane-milter: warning: %s\n", text.c_str());
    log::warning(text);
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
    settings.myhostname = cfg.get("myhostname");
    settings.hold = cfg.get("intercept_action") == "hold";
    settings.reports.queue_directory = settings.queue_directory;
    settings.reports.bounce_address = cfg.get("bounce_address");
    settings.reports.unsubscribe_address = cfg.get("unsubscribe_address");
    settings.reports.complaint_address = cfg.get("complaint_address");
    settings.reports.delimiter = cfg.get("recipient_delimiter");
    if (!parse_percent(cfg.get("max_complaint_rate"), settings.reports.max_complaint_rate))
        die("max_complaint_rate: not a percentage: " + cfg.get("max_complaint_rate"));
    settings.reports.complaint_min_delivered = static_cast<std::uint64_t>(cfg.integer("complaint_min_delivered"));
    settings.reports.event_log = cfg.get("event_log");
    settings.reports.event_webhook = !cfg.get("event_webhook").empty();
    settings.reports.event_fields = cfg.list("event_fields");
    milter::Intake intake(settings.queue_directory);
    settings.intake = &intake;

    std::signal(SIGPIPE, SIG_IGN);
    smfiDesc desc = milter::filter_description(settings);
    if (smfi_register(desc) != MI_SUCCESS) die("smfi_register failed");
    std::string spec = cfg.get("milter_socket");
    privileges::DropPlan drop;  // started as root: the queue and the socket become mail_owner's
    try {
        drop = privileges::DropPlan::prepare(cfg, milter::unix_path(spec));
    } catch (const privileges::Error& e) {
        die(e.what());
    }
    // One milter per queue, decided before anything is touched: a second one
    // must leave the first one's socket alone. A queue_directory that cannot
    // hold the lock yet (missing, a file) is no reason to stop ordinary mail.
    std::optional<PidLock> lock;
    std::string lock_problem;
    try {
        lock.emplace(settings.queue_directory + "/milter.pid", "mxlane-milter");
    } catch (const PidLockBusy& e) {
        die(e.what());
    } catch (const std::exception& e) {
        lock_problem = e.what();
    }
    // Asked before listening: between the socket's chmod and drop() nothing slow may run,
    // or the MTA meets a socket it may not use yet.
    std::vector<std::string> socket_warnings = milter::socket_warnings(spec);
    std::optional<milter::Listener> listener;
    try {
        listener.emplace(spec);
    } catch (const std::exception& e) {
        die(e.what());
    }
    smfi_setbacklog(128);

    // Logging first, so that its own errors still reach the terminal; the
    // store after the fork, since Berkeley DB registers the process that opens it.
    log::open("milter", cfg, foreground);
    log::note_syslog();
    for (const auto& w : socket_warnings) start_warning(w, foreground);
    if (!lock_problem.empty())
        start_warning(lock_problem + "; a second mxlane-milter on this queue would not be refused", foreground);
    try {
        drop.drop();
    } catch (const privileges::Error& e) {
        log::fatal(e.what());
    }
    if (!foreground) {
        daemonize();
        if (lock) lock->write_pid();
    }
    // SIGHUP stops the milter (as it stops libmilter); SIGUSR1 reopens log_file after rotation.
    struct sigaction sa {};
    sa.sa_handler = [](int) { log::reopen_soon(); };
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
    if (std::string err = intake.try_open(); !err.empty())
        log::error(err + "; bulk mail gets 4xx until the queue store opens");
    try {
        loop_key(settings.queue_directory);
    } catch (const LoopKeyError& e) {
        log::error(std::string(e.what()) + "; bulk mail gets 4xx until it can be read");
    }
    log::info("starting: listening on " + spec + ", intercept_action=" + cfg.get("intercept_action") +
              ", queue_directory=" + settings.queue_directory);
    detached();  // the parent that waits since daemonize() exits 0 now

    int rc = smfi_main();  // returns on SIGTERM, SIGINT or SIGHUP
    log::info("stopping: waiting for commits in progress");
    intake.close();
    // The MTA must not find a socket nobody listens on (it would wait for the
    // connect timeout instead of failing at once). On libmilter it is gone
    // already unless it runs as root; a socket that is not ours stays.
    listener->remove();
    log::info("stopped");
    return rc == MI_SUCCESS ? 0 : 1;
}
