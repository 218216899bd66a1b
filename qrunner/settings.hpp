// settings: the qrunner's configuration as typed values, rebuilt whole on SIGHUP.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "libshared/config_file.hpp"
#include "libshared/destination_policy.hpp"
#include "libshared/network_list.hpp"
#include "libshared/reply_rules.hpp"
#include "libshared/source_pools.hpp"
#include "qrunner/dkim/signer.hpp"
#include "qrunner/smtp/session.hpp"
#include "qrunner/warmup.hpp"

namespace mxlane::qrunner {

enum class Mode { direct, relay, combined };
enum class NotifyMode { none, failures, summary, each };  // notify_sender

struct RelayTarget {
    std::string host;    // name or address, without brackets
    int port = 25;
    bool mx_lookup = true;  // false for "[host]:port"
    std::string label() const;  // as written: "[127.0.0.1]:10025"
};

// Parses "[host]:port", "host:port", "[host]", "host" (port defaults to 25).
RelayTarget parse_relay_host(const std::string& text);

// The parameters marked restart in the table whose values differ between the
// configuration the qrunner started with and `next` (a SIGHUP applies the rest).
std::vector<std::string> restart_needed(const Config& started, const Config& next);

struct Settings {
    Config cfg;
    DestinationPolicy policy;
    Mode mode = Mode::direct;
    RelayTarget relay;
    int smtp_port = 25;
    NetworkList prohibited_networks;  // smtp_prohibited_networks: never connected to by MX
    int mx_address_limit = 5;         // smtp_mx_address_limit (0: none)
    int mx_session_limit = 2;         // smtp_mx_session_limit (0: none)
    std::vector<std::int64_t> retry_schedule;  // seconds
    std::int64_t lifetime_ms = 0;
    std::size_t max_connections = 200;
    std::chrono::seconds queue_run_delay{1};
    std::chrono::seconds shutdown_timeout{10};
    smtp::Options smtp;  // helo name, timeouts, TLS defaults (per destination overrides apply)
    std::string relay_password;
    std::string queue_directory;
    NotifyMode notify = NotifyMode::failures;
    std::string myhostname;  // MAILER-DAEMON@myhostname signs the notifications
    std::shared_ptr<const ReplyRules> reply_rules;  // reply_rules; empty: destination_backoff_patterns
    std::vector<std::string> event_fields;  // personalisation columns copied into events
    int auth_failure_hold = 10;  // auth-class failures that hold a job (0: never)
    // dkim_key_table's keys, read once here (a SIGHUP reads them anew); null: no signing.
    std::shared_ptr<const dkim::Signer> dkim;
    bool dkim_hold = false;  // dkim_missing_key = hold
    bool compliance_hold = false;  // compliance_check = hold
    // The loop after delivery, checked at load (a bad value refuses the configuration).
    std::string bounce_address;             // LOCAL@DOMAIN: VERP sender LOCAL+TOKEN@DOMAIN; empty: off
    std::string recipient_delimiter = "+";  // one character
    std::string unsubscribe_address;        // LOCAL@DOMAIN for List-Unsubscribe's mailto; empty: none
    std::string unsubscribe_url;            // http(s)://.../ for List-Unsubscribe's URL; empty: none
    // Sending addresses (source_pools), each checked bindable at load; empty: the kernel picks.
    SourcePools pools;
    std::string default_pool;  // the pool of mail that names none; empty: any address of pools
    WarmupSchedule warmup;     // warmup_schedule

    // The addresses mail of `pool` (a message's, or "") may go from: empty when
    // source_pools names no such pool (the job is held) or is not set.
    std::vector<const SourceAddress*> pool_addresses(const std::string& pool) const;

    // Reads the configuration file and the destination policy; throws ConfigError.
    static std::shared_ptr<const Settings> load(const Config& cfg);

    // Per destination (domain or relay label): the policy line's value or the global one.
    std::int64_t limit(const std::string& destination, const std::string& name) const {
        return policy.integer(destination, name, cfg);
    }
    smtp::Options smtp_for(const std::string& destination) const;
};

}  // namespace mxlane::qrunner
