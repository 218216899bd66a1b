// mxlane-qrunner: delivers the queued bulk jobs; options, configuration, signals, and the event loop.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "libshared/daemon.hpp"
#include "libshared/event_log.hpp"
#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/printable.hpp"
#include "libshared/privileges.hpp"
#include "libshared/store/queue_store.hpp"
#include "qrunner/http/server.hpp"
#include "qrunner/http/site.hpp"
#include "qrunner/scheduler.hpp"
#include "qrunner/webhook.hpp"

using namespace mxlane;
namespace asio = boost::asio;

namespace {

struct Options {
    std::string config = Config::default_path();
    bool foreground = false;
    bool once = false;
};

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-c" && i + 1 < argc) o.config = argv[++i];
        else if (a == "-f") o.foreground = true;
        else if (a == "--once") o.once = true;
        else {
            std::cerr << "usage: mxlane-qrunner [-c FILE] [-f] [--once]\n";
            std::exit(1);
        }
    }
    return o;
}

// Until the daemon has detached, a fatal error also goes to the terminal that started it
// (the log may be syslog or log_file), and ends the waiting parent with status 1.
bool g_terminal = false;
bool g_log_opened = false;  // before log::open the log is the terminal: the line is said once

[[noreturn]] void die(const std::string& msg) {
    if (g_terminal) std::cerr << "mxlane-qrunner: fatal: " << printable(msg) << "\n";
    if (g_terminal && !g_log_opened) std::exit(1);
    log::fatal(msg);
}

// started: the configuration the process started with, which restart-only
// parameters (the table's restart column) keep until the next start.
void wait_for_signals(asio::signal_set& signals, qrunner::Scheduler& scheduler, const std::string& config_file,
                      const Config& started) {
    signals.async_wait([&signals, &scheduler, config_file, &started](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            log::reopen();
            try {
                auto next = qrunner::Settings::load(Config::load(config_file));
                scheduler.reload(next);
                std::string pending;
                for (const auto& name : qrunner::restart_needed(started, next->cfg))
                    pending += (pending.empty() ? "" : ", ") + name;
                if (pending.empty()) log::info("reloaded " + config_file);
                else log::warning("reloaded " + config_file + "; these changes need a restart to take effect: " + pending);
            } catch (const std::exception& e) {
                log::warning(std::string("reload refused, keeping the running configuration: ") + e.what());
            }
            wait_for_signals(signals, scheduler, config_file, started);
            return;
        }
        log::info("stopping: finishing deliveries in flight");
        scheduler.stop();
    });
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_options(argc, argv);
    log::open_stderr("qrunner");
    std::shared_ptr<const qrunner::Settings> settings;
    try {
        settings = qrunner::Settings::load(Config::load(opt.config));
    } catch (const ConfigError& e) {
        log::fatal(e.what());
    }
    g_terminal = !opt.foreground;  // from here the log may be syslog or log_file
    int http_fd = -1;
    try {  // started as root: the queue becomes mail_owner's, and so does this process
        auto drop = privileges::DropPlan::prepare(settings->cfg);
        log::open("qrunner", settings->cfg, opt.foreground);
        g_log_opened = true;
        log::note_syslog();
        try {
            prepare_event_log(settings->cfg.get("event_log"), settings->cfg.get("mail_owner"));
        } catch (const std::runtime_error& e) {
            die(std::string("event_log: ") + e.what());
        }
        // Listening before root is given up: a port below 1024 needs it. A --once run serves nothing.
        if (!settings->cfg.get("http_listen").empty() && !opt.once) {
            try {
                http_fd = qrunner::http::listen_socket(qrunner::http::parse_listen(settings->cfg.get("http_listen")));
            } catch (const std::exception& e) {
                die(e.what());
            }
        }
        drop.drop();
        if (settings->dkim) settings->dkim->keys().check_readable();
    } catch (const privileges::Error& e) {
        die(e.what());
    } catch (const dkim::KeyError& e) {
        die(std::string("dkim_key_table: ") + e.what() + " (as mail_owner " + settings->cfg.get("mail_owner") + ")");
    }
    std::optional<PidLock> lock;  // before detaching: a second qrunner says so where it was started
    try {
        lock.emplace(settings->queue_directory + "/qrunner.pid", "mxlane-qrunner");
    } catch (const std::exception& e) {
        die(e.what());
    }
    try {
        // Detached, but the parent waits: a second qrunner, a store that cannot be
        // opened or a resolver that cannot start end the start with status 1.
        if (!opt.foreground && !opt.once) {
            daemonize();
            lock->write_pid();
        }
        store::QueueStore store(settings->queue_directory);
        if (auto n = store.recover_inflight(store::now_ms()))
            log::info("took back " + std::to_string(n) + " recipients left in flight by an earlier run");
        try {  // made (with an fsync) or read now, not on the event loop at the first relay delivery
            loop_key(settings->queue_directory);
        } catch (const LoopKeyError& e) {
            // Tokens (VERP, List-Unsubscribe) need the key for every message.
            const bool tokens = !settings->bounce_address.empty() || !settings->unsubscribe_address.empty() ||
                                !settings->unsubscribe_url.empty();
            log::warning(std::string(e.what()) + (tokens ? ": bulk mail (bounce_address or unsubscribe_* is set)"
                                                         : ": mail handed to the relay") +
                         " is deferred until it is fixed");
        }
        if (settings->myhostname.find('.') == std::string::npos)
            log::warning("myhostname " + settings->myhostname +
                         " is not fully qualified (EHLO, MAILER-DAEMON and Message-ID use it): set myhostname");
        log::info(std::string("starting") + (opt.once ? " a single run" : "") + ": delivery_mode=" +
                  settings->cfg.get("delivery_mode") + ", threads=" + settings->cfg.get("threads"));

        asio::io_context io;
        auto work = asio::make_work_guard(io);
        qrunner::Scheduler scheduler(io, store, settings, opt.once);
        asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
        const Config started = settings->cfg;
        wait_for_signals(signals, scheduler, opt.config, started);
        // Only a daemon sends events: a --once run leaves them in the spool for the next daemon.
        std::optional<qrunner::Webhook> webhook;
        if (scheduler.webhook_spool() && !opt.once) {
            webhook.emplace(io, *scheduler.webhook_spool(),
                            qrunner::parse_webhook_url(settings->cfg.get("event_webhook")),
                            settings->cfg.get("event_webhook_secret"));
            webhook->start();
        }
        std::optional<qrunner::http::Server> http;
        if (http_fd >= 0) {
            http.emplace(io, http_fd,
                         qrunner::http::Site(
                             store, settings->queue_directory,
                             [&scheduler, &webhook] {
                                 return scheduler.metrics_text() + (webhook ? webhook->metrics_text() : "");
                             },
                             [&scheduler](const store::Recipient& r) { scheduler.recipient_event(r, "unsubscribed"); }));
            http->start();
            log::info("serving HTTP on " + settings->cfg.get("http_listen") + " (one-click unsubscribe, /metrics)");
        }
        asio::co_spawn(scheduler.executor(), scheduler.run(), [&](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log::error(std::string("scheduler stopped: ") + ex.what());
                }
            }
            signals.cancel();
            if (http) http->stop();
            if (webhook) webhook->stop();
            scheduler.resolver().shutdown();
            work.reset();
            io.stop();
        });
        detached();
        g_terminal = false;
        std::vector<std::thread> threads;
        for (int i = 1; i < settings->cfg.integer("threads"); ++i) threads.emplace_back([&] { io.run(); });
        io.run();
        for (auto& t : threads) t.join();
        if (scheduler.abandoned())
            if (auto n = store.recover_inflight(store::now_ms()))
                log::info(std::to_string(n) + " recipients abandoned on the wire at shutdown are due again");
        log::info("stopped");
    } catch (const std::exception& e) {
        die(e.what());
    }
    return 0;
}
