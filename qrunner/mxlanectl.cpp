// mxlanectl: shows and steers the mxlane queue (jobs, recipients, configuration).
#include <cstring>
#include <iostream>
#include <map>

#include "libshared/log.hpp"
#include "libshared/printable.hpp"
#include "libshared/privileges.hpp"
#include "qrunner/ctl/ctl.hpp"

using namespace mxlane;

namespace {

const char* kUsage =
    "usage: mxlanectl [-c FILE] COMMAND [ARGS] [--json]\n"
    "commands:\n"
    "  jobs                          one row per job with counts by recipient state\n"
    "  job ID                        one job and its messages\n"
    "  recipients ID [--state S]     the job's recipients\n"
    "  flush [ID]                    make deferred recipients due now (all jobs, or one)\n"
    "  hold ID                       keep the job's recipients from being sent\n"
    "  release ID                    let a held job's recipients be sent again\n"
    "  delete ID [--force]           remove the job (--force: even with recipients in flight)\n"
    "  export ID [--state S]         CSV of the job's recipients, results and fields\n"
    "  submit --message FILE --recipients FILE [--name N] [--from ADDR] [--pool P]\n"
    "                                a job from a message and a CSV of recipients ({{column}})\n"
    "  verify ADDR... | --file FILE [--suppress]\n"
    "                                probe addresses by MX and RCPT TO, nothing sent:\n"
    "                                valid, invalid, unknown or catch-all\n"
    "  suppress list | add ADDR... | remove ADDR...\n"
    "                                the addresses never sent to\n"
    "  dkim keygen DOMAIN SELECTOR [--algorithm rsa|ed25519] [--bits N] [--out FILE]\n"
    "                                a new private key (mode 0600) and the DNS TXT record to publish\n"
    "  dkim list                     dkim_key_table's keys: type, bits, the TXT record each needs\n"
    "  destinations                  per destination and provider: queued, in flight, connections,\n"
    "                                limit, paused until when and why, last reply\n"
    "  pause NAME [--for DURATION]   stop sending to a destination (example.test) or provider\n"
    "                                (mx:.google.com) for DURATION (30m, 2h, 1d) or until resumed\n"
    "  resume NAME                   send to a paused destination or provider again\n"
    "  pools                         per sending address (source_pools) and provider: pool, HELO\n"
    "                                name, warm-up day, sent today, cap, suspension\n"
    "  pools warmup ADDRESS DAY      the address is on day DAY of its warm-up from now on\n"
    "  check [DOMAIN...]             the sending domains' DKIM, SPF, DMARC, the sending addresses'\n"
    "                                PTR and HELO, List-Unsubscribe: pass, fail or warn, before sending\n"
    "                                (default: the key table's and the active jobs' From: domains)\n"
    "  hosts                         the hosts sharing shared_state: last heartbeat, connections\n"
    "                                in flight per destination and provider\n"
    "  config [-n] [-x] [-r]         the effective configuration (-n: only what the file sets,\n"
    "                                -x: $name expanded, -r: only what takes a restart, not SIGHUP)\n";

using Command = int (*)(ctl::Context&);

const std::map<std::string, Command>& commands() {
    static const std::map<std::string, Command> table = {
        {"config", ctl::cmd_config},
        {"jobs", ctl::cmd_jobs},
        {"job", ctl::cmd_job},
        {"recipients", ctl::cmd_recipients},
        {"flush", ctl::cmd_flush},
        {"hold", ctl::cmd_hold},
        {"release", ctl::cmd_release},
        {"delete", ctl::cmd_delete},
        {"export", ctl::cmd_export},
        {"submit", ctl::cmd_submit},
        {"suppress", ctl::cmd_suppress},
        {"verify", ctl::cmd_verify},
        {"dkim", ctl::cmd_dkim},
        {"destinations", ctl::cmd_destinations},
        {"pause", ctl::cmd_pause},
        {"resume", ctl::cmd_resume},
        {"pools", ctl::cmd_pools},
        {"check", ctl::cmd_check},
        {"hosts", ctl::cmd_hosts},
    };
    return table;
}

// What the group of mail_owner may run (like mailq for anyone): nothing here writes.
bool read_only(const std::string& command, const std::vector<std::string>& args) {
    if (command == "pools") return args.size() < 2 || args[1] != "warmup";
    for (const char* c : {"config", "jobs", "job", "recipients", "export", "destinations", "check", "hosts"})
        if (command == c) return true;
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    log::open_stderr("ctl");
    std::string config_file = Config::default_path();
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-c") == 0 && i + 1 < argc && args.empty()) config_file = argv[++i];
        else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
            std::cout << kUsage;
            return 0;
        } else args.emplace_back(argv[i]);
    }
    if (args.empty()) {
        std::cerr << kUsage;
        return 1;
    }
    auto it = commands().find(args[0]);
    if (it == commands().end()) {
        std::cerr << "mxlanectl: unknown command: " << printable(args[0]) << " (mxlanectl --help lists them)\n";
        return 1;
    }
    ctl::Context c;
    c.args.assign(args.begin() + 1, args.end());
    c.json = c.take_flag("--json");
    try {
        c.cfg = Config::load(config_file);
        // As root, work as the queue's owner (mail_owner) so that the daemons can use what we add.
        // dkim touches no queue: keygen writes where the admin says (as root, giving the key to mail_owner).
        if (args[0] != "dkim") privileges::act_as_queue_owner(c.cfg.get("queue_directory"));
        if (!read_only(args[0], args) && args[0] != "dkim") privileges::require_queue_owner(c.cfg.get("queue_directory"), "mxlanectl " + args[0]);
        return it->second(c);
    } catch (const ConfigError& e) {
        std::cerr << "mxlanectl: fatal: " << printable(e.what()) << "\n";
        return 1;
    } catch (const privileges::Error& e) {
        std::cerr << "mxlanectl: " << printable(e.what()) << "\n";
        return 1;
    } catch (const ctl::UsageError& e) {
        std::cerr << "mxlanectl: " << printable(e.what()) << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "mxlanectl: error: " << printable(e.what()) << "\n";
        return 2;
    }
}
