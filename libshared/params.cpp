// params: the one table of mxlane.conf parameters and the value checks that go with it.
#include "libshared/params.hpp"

#include "libshared/network_list.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace mxlane {
namespace {

using T = ParamType;
constexpr std::int64_t kDay = 86400;

// Keep in step with conf/mxlane.conf and the README's table (tests/unit checks both).
constexpr std::array kParams = {
    ParamDef{"queue_directory", T::path, "/var/spool/mxlane", 0, 0, "",
             "the Berkeley DB environment and everything else the queue needs", true},
    ParamDef{"myhostname", T::string, "", 0, 0, "",
             "this host's fully qualified name; empty: the system's (host name, else its canonical name)"},
    ParamDef{"mail_owner", T::string, "mxlane", 0, 0, "",
             "user the daemons run as when started as root", true},
    ParamDef{"syslog_name", T::string, "mxlane", 0, 0, "",
             "program name prefix in log lines (mxlane/qrunner, mxlane/milter)", true},
    ParamDef{"log_file", T::path, "", 0, 0, "",
             "log to this file instead of syslog (same line prefix as syslog)", true},
    ParamDef{"milter_socket", T::socket, "unix:/var/spool/postfix/mxlane/milter.sock", 0, 0, "",
             "where the milter listens: unix:PATH, inet:PORT@HOST, inet6:PORT@HOST", true},
    ParamDef{"bulk_header", T::string, "X-Mxlane-Job", 0, 0, "",
             "a message carrying this header is a bulk job; the value names the job"},
    ParamDef{"job_key_headers", T::list, "List-Id, Feedback-ID, X-Campaign-ID", 0, 0, "",
             "after bulk_header, the first of these a message carries names its job"},
    ParamDef{"job_idle_close", T::duration, "10m", 1, 30 * kDay, "",
             "a job keyed so stays open for more messages until this long passes without one; then the next message with that key starts a new job"},
    ParamDef{"bulk_min_recipients", T::integer, "0", 0, 1000000, "",
             "a message with at least this many recipients is a bulk job (0: off)"},
    ParamDef{"bulk_senders", T::list, "", 0, 0, "",
             "envelope senders whose mail is bulk: user@dom, @dom, dom, or /path/file"},
    ParamDef{"bulk_sasl_users", T::list, "", 0, 0, "",
             "SASL logins whose mail is bulk (same forms as bulk_senders)"},
    ParamDef{"bulk_clients", T::networks, "127.0.0.0/8, [::1]/128", 0, 0, "",
             "client networks whose mail may be bulk without SASL login: 10.0.0.0/8, [2001:db8::]/32"},
    ParamDef{"message_size_limit", T::size, "52428800", 1024, 4LL << 30, "",
             "the largest message the milter takes over, in bytes as the client sent it; larger ones get 552 5.3.4"},
    ParamDef{"intercept_action", T::choice, "discard", 0, 0, "discard|hold",
             "what the host MTA does with the original once it is stored"},
    ParamDef{"delivery_mode", T::choice, "direct", 0, 0, "direct|relay|combined",
             "direct by MX, relay to relay_host, or direct then relay for temporary failures"},
    ParamDef{"relay_host", T::hostport, "[127.0.0.1]:10025", 0, 0, "",
             "[host]:port or host:port of the relay (brackets: no MX lookup)"},
    ParamDef{"relay_username", T::string, "", 0, 0, "",
             "SMTP AUTH user for the relay (sent only over TLS)"},
    ParamDef{"relay_password_file", T::path, "", 0, 0, "",
             "file holding the SMTP AUTH password for the relay"},
    ParamDef{"smtp_port", T::integer, "25", 1, 65535, "",
             "TCP port used for direct delivery"},
    ParamDef{"smtp_prohibited_networks", T::networks, "0.0.0.0/8, [::]/128", 0, 0, "",
             "addresses never connected to by MX (add 127.0.0.0/8 and private ranges on a public server); the relay host is exempt"},
    ParamDef{"smtp_mx_address_limit", T::integer, "5", 0, 1000, "",
             "MX addresses tried at most per delivery attempt (0: no limit)"},
    ParamDef{"smtp_mx_session_limit", T::integer, "2", 0, 1000, "",
             "SMTP sessions at most per delivery attempt (0: no limit)"},
    ParamDef{"dns_servers", T::servers, "", 0, 0, "",
             "DNS servers, ip[:port] comma-separated; empty: the system resolver's", true},
    ParamDef{"dns_timeout", T::duration, "5s", 1, 300, "",
             "time to wait for one DNS answer before retrying or giving up", true},
    ParamDef{"retry_schedule", T::durations, "5m 10m 20m 40m 1h 2h 4h", 1, 30 * kDay, "",
             "wait before each retry of a temporarily failed recipient; the last repeats"},
    ParamDef{"max_queue_lifetime", T::duration, "5d", 1, 365 * kDay, "",
             "a recipient still not delivered after this long expires"},
    ParamDef{"queue_run_delay", T::duration, "1s", 1, 3600, "",
             "how often the qrunner looks for recipients that became due"},
    ParamDef{"shutdown_timeout", T::duration, "10s", 1, 3600, "",
             "on SIGTERM, how long transactions on the wire may go on before they are abandoned (their recipients are due again)"},
    ParamDef{"threads", T::integer, "2", 1, 256, "",
             "threads running the qrunner's event loop", true},
    ParamDef{"max_connections", T::integer, "200", 1, 100000, "",
             "outgoing SMTP connections at most, all destinations together"},
    ParamDef{"destination_concurrency", T::integer, "20", 1, 10000, "",
             "connections at most to one destination (domain, or MX set)"},
    ParamDef{"max_recipients_per_transaction", T::integer, "50", 1, 10000, "",
             "recipients sharing one MAIL transaction when the message is not personalised"},
    ParamDef{"max_messages_per_connection", T::integer, "100", 1, 1000000, "",
             "messages sent over one connection before it is closed"},
    ParamDef{"max_messages_per_hour", T::integer, "0", 0, 100000000, "",
             "messages per hour at most to one destination or the relay (0: no limit)"},
    ParamDef{"max_connections_per_minute", T::integer, "0", 0, 1000000, "",
             "new connections per minute at most to one destination (0: no limit)"},
    ParamDef{"destination_backoff", T::duration, "5m", 1, kDay, "",
             "pause of a destination after a 421 or a throttling reply"},
    ParamDef{"destination_backoff_patterns", T::string,
             "4.7.0, too many connections, too many messages, rate limit, throttl", 0, 0, "",
             "4xx replies containing one of these (comma-separated, any case) throttle like a 421"},
    ParamDef{"reply_rules", T::path, "", 0, 0, "",
             "file of /REGEX/ SCOPE ACTION rules on servers' replies (conf/reply_rules); empty: 421 and "
             "destination_backoff_patterns suspend the destination for destination_backoff"},
    ParamDef{"http_listen", T::string, "", 0, 0, "",
             "HOST:PORT where the qrunner serves HTTP: POST /u/TOKEN (one-click unsubscribe), GET /u/TOKEN (a page "
             "whose button POSTs), GET /metrics (Prometheus); empty: off", true},
    ParamDef{"event_log", T::path, "", 0, 0, "",
             "JSON lines, one per recipient result and finished or held job (time, type, job, job_name, "
             "recipient, dsn, class, reply, host, source); reopened on SIGHUP; empty: off"},
    ParamDef{"event_fields", T::string, "", 0, 0, "",
             "personalisation columns copied into each recipient event as \"fields\" (comma-separated, e.g. "
             "subscriber_id; a recipient without the column gets \"\"); empty: none"},
    ParamDef{"event_webhook", T::string, "", 0, 0, "",
             "http:// or https:// URL that receives the events of event_log as JSON arrays by POST (batches of "
             "up to 500 events or 1 MB, at most 1 s old), from the spool queue_directory/webhook.spool, retried "
             "with backoff; empty: off", true},
    ParamDef{"event_webhook_secret", T::string, "", 0, 0, "",
             "key that signs each event_webhook POST: X-Mxlane-Signature: sha256=HEX, the HMAC-SHA256 of the "
             "body; empty: unsigned", true},
    ParamDef{"shared_state", T::string, "", 0, 0, "",
             "redis://HOST:PORT/DB or rediss://HOST:PORT/DB (TLS): the Redis through which several hosts share rate limits, connection counts, suspensions and throttles, warm-up counts, heartbeats and the suppression list (docs/SCALE.md); empty: this host alone", true},
    ParamDef{"shared_state_password_file", T::path, "", 0, 0, "",
             "file holding the password for shared_state's Redis (AUTH); empty: none", true},
    ParamDef{"shared_state_tls_CAfile", T::path, "", 0, 0, "",
             "CA certificates (PEM) that a rediss:// shared_state's certificate is checked against; empty: the system's", true},
    ParamDef{"shared_state_timeout", T::duration, "1s", 1, 60, "",
             "a shared_state reply later than this counts as Redis away: each host goes on at its share of every limit", true},
    ParamDef{"auth_failure_hold", T::integer, "10", 0, 1000000, "",
             "failures of class auth (SPF, DKIM, DMARC) after which a job is held (0: never)"},
    ParamDef{"destination_policy", T::path, "", 0, 0, "",
             "file of per-destination overrides; empty: none"},
    ParamDef{"providers", T::path, "", 0, 0, "",
             "file of provider lines (mx:.SUFFIX settings, conf/providers) grouping destinations by their "
             "MX hosts; destination_policy lines override them line by line; empty: none"},
    ParamDef{"smtp_helo_name", T::string, "$myhostname", 0, 0, "",
             "EHLO name (a source_pools address uses its own)"},
    ParamDef{"source_pools", T::path, "", 0, 0, "",
             "file of sending addresses, one a line: POOL ADDRESS HELO_NAME (IPv4 or IPv6); connections bind to "
             "the job's pool's addresses in turn, each with its own EHLO name; empty: the system picks the source address"},
    ParamDef{"default_pool", T::string, "", 0, 0, "",
             "the pool of a job that names none; empty: such jobs go from any address of source_pools"},
    ParamDef{"pool_header", T::string, "X-Mxlane-Pool", 0, 0, "",
             "at intake, a message carrying this header is sent from the pool it names (the header is removed); "
             "mxlanectl submit --pool P does the same"},
    ParamDef{"warmup_schedule", T::integers, "", 1, 1000000000, "",
             "messages per day per sending address and provider on day 1, 2, 3, ... of that address's life "
             "(50 100 500 1000 5000 20000); the last repeats; over the cap, mail waits for the next day or goes "
             "from another address of the pool; empty: no cap"},
    ParamDef{"smtp_tls_security_level", T::choice, "may", 0, 0, "none|may|encrypt|verify",
             "none, may (opportunistic STARTTLS), encrypt (TLS required), verify (and certificate checked)"},
    ParamDef{"smtp_tls_CAfile", T::path, "", 0, 0, "",
             "CA bundle for verify; empty: the system store"},
    ParamDef{"smtp_connect_timeout", T::duration, "30s", 1, 3600, "",
             "time to wait for a TCP connection to an SMTP server"},
    ParamDef{"smtp_helo_timeout", T::duration, "300s", 1, 3600, "",
             "time to wait for the greeting and the EHLO/HELO reply (RFC 5321 4.5.3.2)"},
    ParamDef{"smtp_mail_timeout", T::duration, "300s", 1, 3600, "",
             "time to wait for the MAIL FROM reply"},
    ParamDef{"smtp_rcpt_timeout", T::duration, "300s", 1, 3600, "",
             "time to wait for each RCPT TO reply"},
    ParamDef{"smtp_data_init_timeout", T::duration, "120s", 1, 3600, "",
             "time to wait for the DATA reply"},
    ParamDef{"smtp_data_xfer_timeout", T::duration, "180s", 1, 3600, "",
             "time allowed for sending each block of message content"},
    ParamDef{"smtp_data_done_timeout", T::duration, "600s", 1, 3600, "",
             "time to wait for the reply to the final dot"},
    ParamDef{"smtp_rset_timeout", T::duration, "20s", 1, 3600, "",
             "time to wait for the RSET reply between two transactions on one connection"},
    ParamDef{"smtp_quit_timeout", T::duration, "2s", 1, 3600, "",
             "time to wait for the QUIT reply; short because the reply decides nothing and the connection "
             "slot stays taken while waiting (Postfix: 300s)"},
    ParamDef{"notify_sender", T::choice, "failures", 0, 0, "none|failures|summary|each",
             "none, failures (one report per finished job that had bounced or expired recipients), summary (one report per finished job), each (RFC 3464 DSN per failure)"},
    ParamDef{"dkim_key_table", T::path, "", 0, 0, "",
             "DKIM keys, one a line: DOMAIN SELECTOR KEYFILE (a PEM private key, RSA or Ed25519); several lines for one domain give several signatures; empty: no signing"},
    ParamDef{"dkim_signed_headers", T::list, "From, To, Cc, Subject, Date, Message-ID, Reply-To, MIME-Version, Content-Type, Content-Transfer-Encoding, List-Unsubscribe, List-Unsubscribe-Post, List-Id, Feedback-ID", 0, 0, "",
             "the header fields DKIM signs when present; From is always signed, once more than it occurs, so that none can be added"},
    ParamDef{"dkim_missing_key", T::choice, "send", 0, 0, "send|hold",
             "a job whose From: domain (or a parent of it) has no key: send (unsigned, one warning per job) or hold (the job is held, with the reason)"},
    ParamDef{"compliance_check", T::choice, "warn", 0, 0, "warn|hold",
             "when a job starts, its From: domain gets the checks of mxlanectl check (DKIM, SPF, DMARC, PTR and HELO, List-Unsubscribe): warn (failures are logged) or hold (a failing domain's job is held, with the reasons)"},
    ParamDef{"check_tls_domains", T::list, "gmail.com, yahoo.com, outlook.com", 0, 0, "",
             "mxlanectl check verifies TLS to the first reachable MX of each of these domains (STARTTLS, the certificate against smtp_tls_CAfile and the MX name); empty: no TLS check"},
    ParamDef{"bounce_address", T::string, "", 0, 0, "",
             "e.g. bounces@shop.test: every message goes out with envelope sender bounces+TOKEN@shop.test (VERP), TOKEN naming job and recipient, authenticated with the loop key; empty: off"},
    ParamDef{"recipient_delimiter", T::string, "+", 0, 0, "",
             "the one character between LOCAL and TOKEN in bounce and unsubscribe addresses, as Postfix's"},
    ParamDef{"unsubscribe_address", T::string, "", 0, 0, "",
             "e.g. unsubscribe@shop.test: List-Unsubscribe gets <mailto:unsubscribe+TOKEN@shop.test>; empty: none"},
    ParamDef{"unsubscribe_url", T::string, "", 0, 0, "",
             "e.g. https://news.shop.test/u/: List-Unsubscribe gets <https://news.shop.test/u/TOKEN> and List-Unsubscribe-Post: List-Unsubscribe=One-Click is added; empty: none"},
    ParamDef{"complaint_address", T::string, "", 0, 0, "",
             "e.g. fbl@shop.test: where feedback-loop complaints (ARF, RFC 5965) arrive; the milter reads them, suppresses the address and counts the complaint against its job; empty: off"},
    ParamDef{"max_complaint_rate", T::percent, "0.3%", 0, 0, "",
             "a job whose complaints exceed this share of its delivered recipients (once it has complaint_min_delivered) is held, with the reason"},
    ParamDef{"complaint_min_delivered", T::integer, "1000", 1, 1000000000, "",
             "delivered recipients a job needs before max_complaint_rate applies"},
};

bool contains_choice(std::string_view choices, std::string_view value) {
    while (!choices.empty()) {
        auto bar = choices.find('|');
        if (choices.substr(0, bar) == value) return true;
        if (bar == std::string_view::npos) break;
        choices.remove_prefix(bar + 1);
    }
    return false;
}

std::string bounds_problem(const ParamDef& def, std::int64_t v, std::string_view value) {
    if (v < def.min || v > def.max)
        return "out of range (" + std::to_string(def.min) + ".." + std::to_string(def.max) +
               "): " + std::string(value);
    return {};
}

bool is_ip(const std::string& text, int family) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(family, text.c_str(), buf) == 1;
}

bool parse_port(std::string_view text, int& port) {
    std::int64_t v = 0;
    if (!parse_integer(text, v) || v < 1 || v > 65535) return false;
    port = static_cast<int>(v);
    return true;
}

// One dns_servers item as c-ares reads it: 192.0.2.1, 192.0.2.1:53, ::1, [::1], [::1]:53.
std::string server_problem(const std::string& item) {
    std::string host;
    int port = 53;
    bool brackets = false;
    if (is_ip(item, AF_INET6)) return {};  // bare IPv6, no port
    if (auto p = parse_host_port(item, 53, host, port, brackets); !p.empty()) return p;
    if (is_ip(host, AF_INET) || (brackets && is_ip(host, AF_INET6))) return {};
    return "not an IP address (ip[:port], [ipv6]:port): " + item;
}

// unix:PATH, inet:PORT@HOST, inet6:PORT@HOST, as libmilter's smfi_setconn takes them.
std::string socket_problem(std::string_view value) {
    if (value.starts_with("unix:") || value.starts_with("local:")) {
        if (value.substr(value.find(':') + 1).empty()) return "unix: needs a path: " + std::string(value);
        return {};
    }
    for (std::string_view kind : {"inet:", "inet6:"}) {
        if (!value.starts_with(kind)) continue;
        std::string_view rest = value.substr(kind.size());
        auto at = rest.find('@');
        int port = 0;
        if (!parse_port(rest.substr(0, at), port))
            return "expected " + std::string(kind) + "PORT@HOST (port 1..65535): " + std::string(value);
        if (at != std::string_view::npos && rest.substr(at + 1).empty())
            return "no host after @: " + std::string(value);
        return {};
    }
    return "expected unix:PATH, inet:PORT@HOST or inet6:PORT@HOST: " + std::string(value);
}

}  // namespace

std::string parse_host_port(std::string_view text, int default_port, std::string& host, int& port,
                            bool& brackets) {
    std::string_view rest = text;
    brackets = !rest.empty() && rest.front() == '[';
    if (brackets) {
        auto close = rest.find(']');
        if (close == std::string_view::npos) return "missing ']' in " + std::string(text);
        host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty() && rest.front() != ':') return "expected :port after ] in " + std::string(text);
    } else {
        auto colon = rest.rfind(':');
        host = std::string(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
    }
    port = default_port;
    if (!rest.empty() && !parse_port(rest.substr(1), port)) return "bad port in " + std::string(text);
    if (host.empty()) return "no host in " + std::string(text);
    return {};
}

std::span<const ParamDef> param_table() { return kParams; }

const ParamDef* find_param(std::string_view name) {
    auto it = std::find_if(kParams.begin(), kParams.end(),
                           [&](const ParamDef& d) { return d.name == name; });
    return it == kParams.end() ? nullptr : &*it;
}

bool parse_integer(std::string_view text, std::int64_t& value) {
    if (text.empty()) return false;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && p == text.data() + text.size();
}

bool parse_duration(std::string_view text, std::int64_t& seconds) {
    if (text.empty()) return false;
    std::int64_t unit = 1;
    switch (text.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = kDay; break;
        case 'w': unit = 7 * kDay; break;
        default: unit = 0;
    }
    if (unit != 0) text.remove_suffix(1);
    else unit = 1;
    std::int64_t n = 0;
    if (!parse_integer(text, n) || n < 0 || n > INT64_MAX / unit) return false;
    seconds = n * unit;
    return true;
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text) {
        if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

bool parse_percent(std::string_view text, double& percent) {
    if (text.ends_with('%')) text.remove_suffix(1);
    if (text.empty() || text.size() > 20) return false;
    for (char c : text)
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
    if (std::count(text.begin(), text.end(), '.') > 1 || text.front() == '.' || text.back() == '.') return false;
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v > 100) return false;
    percent = v;
    return true;
}

std::string check_param_value(const ParamDef& def, std::string_view value) {
    std::int64_t v = 0;
    switch (def.type) {
        case T::string:
        case T::path:
        case T::list:
            return {};
        case T::servers:
            for (const auto& item : split_list(value))
                if (auto p = server_problem(item); !p.empty()) return p;
            return {};
        case T::hostport: {
            std::string host;
            int port = 0;
            bool brackets = false;
            return parse_host_port(value, 25, host, port, brackets);
        }
        case T::socket:
            return socket_problem(value);
        case T::integer:
        case T::size:
            if (!parse_integer(value, v)) return "not a whole number: " + std::string(value);
            return bounds_problem(def, v, value);
        case T::duration:
            if (!parse_duration(value, v))
                return "not a duration (a number with s, m, h or d): " + std::string(value);
            return bounds_problem(def, v, value);
        case T::durations: {
            auto items = split_list(value);
            if (items.empty()) return "needs at least one duration";
            for (const auto& item : items) {
                if (!parse_duration(item, v))
                    return "not a duration (a number with s, m, h or d): " + item;
                if (auto p = bounds_problem(def, v, item); !p.empty()) return p;
            }
            return {};
        }
        case T::integers:
            for (const auto& item : split_list(value)) {
                if (!parse_integer(item, v)) return "not a whole number: " + item;
                if (auto p = bounds_problem(def, v, item); !p.empty()) return p;
            }
            return {};
        case T::choice:
            if (!contains_choice(def.choices, value))
                return "must be one of " + std::string(def.choices) + ": " + std::string(value);
            return {};
        case T::boolean:
            if (value != "yes" && value != "no") return "must be yes or no: " + std::string(value);
            return {};
        case T::percent: {
            double p = 0;
            if (!parse_percent(value, p)) return "not a percentage from 0 to 100 (e.g. 0.3%): " + std::string(value);
            return {};
        }
        case T::networks:
            try {
                NetworkList::parse(value);
            } catch (const std::invalid_argument& e) {
                return e.what();
            }
            return {};
    }
    return {};
}

}  // namespace mxlane
