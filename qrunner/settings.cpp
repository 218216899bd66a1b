// settings: the qrunner's configuration as typed values, rebuilt whole on SIGHUP.
#include "qrunner/settings.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "libshared/address.hpp"
#include "libshared/log.hpp"
#include "libshared/params.hpp"
#include "qrunner/webhook.hpp"

namespace mxlane::qrunner {
namespace {

std::chrono::seconds secs(const Config& cfg, const char* name) { return std::chrono::seconds(cfg.seconds(name)); }

std::string read_secret(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw ConfigError("relay_password_file " + file + ": cannot read: " + std::strerror(errno));
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

// The keys are read here, at start and on SIGHUP, never per message; any
// problem with one refuses the whole configuration (the old keys stay).
std::shared_ptr<const dkim::Signer> load_signer(const Config& cfg) {
    const std::string table = cfg.get("dkim_key_table");
    if (table.empty()) return nullptr;
    try {
        auto keys = dkim::KeyTable::load(table);
        for (const auto& k : keys.all())
            if (k.algorithm == dkim::Algorithm::rsa && k.bits < 2048)
                log::warning("dkim_key_table: " + k.file + ": RSA key of " + std::to_string(k.bits) +
                             " bits; receivers expect 2048 or more");
        return std::make_shared<const dkim::Signer>(std::move(keys), cfg.list("dkim_signed_headers"));
    } catch (const dkim::KeyError& e) {
        throw ConfigError(std::string("dkim_key_table: ") + e.what());
    }
}

// An address a token is put into: plain ASCII LOCAL@DOMAIN, its local part
// without the delimiter (where would the token start?).
void check_loop_address(const std::string& name, const std::string& value, const std::string& delimiter) {
    if (value.empty()) return;
    for (unsigned char c : value)
        if (c < 0x21 || c > 0x7e) throw ConfigError(name + ": not a plain ASCII address LOCAL@DOMAIN: " + value);
    if (!valid_address(value) || value.front() == '<')
        throw ConfigError(name + ": not an address LOCAL@DOMAIN: " + value);
    if (local_part_of(value).find(delimiter) != std::string::npos)
        throw ConfigError(name + ": its local part holds recipient_delimiter " + delimiter + ": " + value);
}

void load_loop(const Config& cfg, Settings& s) {
    s.recipient_delimiter = cfg.get("recipient_delimiter");
    const std::string& d = s.recipient_delimiter;
    // One character that may stand in a local part and cannot be part of a token.
    if (d.size() != 1 || std::string_view("-+=_.~!#$%&'*/?^`{|}").find(d[0]) == std::string_view::npos)
        throw ConfigError("recipient_delimiter: must be one of the characters - + = _ . ~ ! # $ % & ' * / ? ^ ` { | }: " + d);
    s.bounce_address = cfg.get("bounce_address");
    check_loop_address("bounce_address", s.bounce_address, d);
    s.unsubscribe_address = cfg.get("unsubscribe_address");
    check_loop_address("unsubscribe_address", s.unsubscribe_address, d);
    s.unsubscribe_url = cfg.get("unsubscribe_url");
    const std::string& u = s.unsubscribe_url;
    if (u.empty()) return;
    if (!(u.starts_with("https://") || u.starts_with("http://")) || !u.ends_with("/") ||
        u.size() <= std::string_view("https://").size() || u[u.find("//") + 2] == '/')
        throw ConfigError("unsubscribe_url: must be http(s)://HOST/PATH/ ending in /: " + u);
    // It goes between < > in a header field (RFC 2369): no blanks, controls, quotes or brackets.
    for (unsigned char c : u)
        if (c < 0x21 || c > 0x7e || std::string_view("<>\"\\, ").find(static_cast<char>(c)) != std::string_view::npos)
            throw ConfigError("unsubscribe_url: character not allowed in a URL: " + u);
}

// An address of source_pools that cannot be bound (not on this machine) stops
// the start (or a reload) with one line, instead of deferring every transaction.
void check_bindable(const SourcePools& pools, const std::string& file) {
    boost::asio::io_context io;
    for (const auto& a : pools.addresses) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(a.address, ec), 0);
        boost::asio::ip::tcp::socket sock(io);
        if (!ec) sock.open(ep.protocol(), ec);
        if (!ec) sock.bind(ep, ec);
        if (ec)
            throw ConfigError("source_pools " + file + ": cannot send from " + a.address + " (pool " + a.pool +
                              "): " + ec.message() + " (is the address on this machine?)");
    }
}

void load_pools(const Config& cfg, Settings& s) {
    const std::string file = cfg.get("source_pools");
    s.default_pool = cfg.get("default_pool");
    s.warmup = WarmupSchedule::parse(cfg.list("warmup_schedule"));
    if (file.empty()) {
        if (!s.default_pool.empty()) throw ConfigError("default_pool " + s.default_pool + ": source_pools is not set");
        return;
    }
    try {
        s.pools = load_source_pools(file);
    } catch (const ConfigError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw ConfigError(e.what());
    }
    if (s.pools.addresses.empty()) throw ConfigError("source_pools " + file + ": no address in it");
    if (!s.default_pool.empty() && s.pools.pool(s.default_pool).empty())
        throw ConfigError("default_pool: no pool " + s.default_pool + " in source_pools " + file);
    check_bindable(s.pools, file);
}

}  // namespace

std::vector<const SourceAddress*> Settings::pool_addresses(const std::string& pool) const {
    const std::string& name = pool.empty() ? default_pool : pool;
    if (!name.empty()) return pools.pool(name);
    std::vector<const SourceAddress*> all;
    for (const auto& a : pools.addresses) all.push_back(&a);
    return all;
}

std::string RelayTarget::label() const {
    return (mx_lookup ? host : "[" + host + "]") + ":" + std::to_string(port);
}

RelayTarget parse_relay_host(const std::string& text) {
    RelayTarget t;
    bool brackets = false;
    if (auto problem = parse_host_port(text, 25, t.host, t.port, brackets); !problem.empty())
        throw ConfigError("relay_host: " + problem);
    t.mx_lookup = !brackets;
    return t;
}

std::vector<std::string> restart_needed(const Config& started, const Config& next) {
    std::vector<std::string> out;
    for (const ParamDef& def : param_table()) {
        std::string name(def.name);
        if (def.restart && started.get(name) != next.get(name)) out.push_back(name);
    }
    return out;
}

std::shared_ptr<const Settings> Settings::load(const Config& cfg) {
    auto s = std::make_shared<Settings>();
    s->cfg = cfg;
    s->policy = DestinationPolicy::load(cfg.get("destination_policy"), cfg.get("providers"));
    std::string mode = cfg.get("delivery_mode");
    s->mode = mode == "relay" ? Mode::relay : mode == "combined" ? Mode::combined : Mode::direct;
    s->relay = parse_relay_host(cfg.get("relay_host"));
    s->smtp_port = static_cast<int>(cfg.integer("smtp_port"));
    s->prohibited_networks = NetworkList::parse(cfg.get("smtp_prohibited_networks"));
    s->mx_address_limit = static_cast<int>(cfg.integer("smtp_mx_address_limit"));
    s->mx_session_limit = static_cast<int>(cfg.integer("smtp_mx_session_limit"));
    s->retry_schedule = cfg.seconds_list("retry_schedule");
    s->lifetime_ms = cfg.seconds("max_queue_lifetime") * 1000;
    s->max_connections = static_cast<std::size_t>(cfg.integer("max_connections"));
    s->queue_run_delay = secs(cfg, "queue_run_delay");
    s->shutdown_timeout = secs(cfg, "shutdown_timeout");
    s->queue_directory = cfg.get("queue_directory");
    std::string notify = cfg.get("notify_sender");
    s->notify = notify == "none"      ? NotifyMode::none
                : notify == "each"    ? NotifyMode::each
                : notify == "summary" ? NotifyMode::summary
                                      : NotifyMode::failures;
    s->myhostname = cfg.get("myhostname");
    try {
        s->reply_rules = std::make_shared<const ReplyRules>(
            cfg.get("reply_rules").empty() ? ReplyRules() : ReplyRules::load(cfg.get("reply_rules")));
    } catch (const ReplyRulesError& e) {
        throw ConfigError(e.what());
    }
    s->auth_failure_hold = static_cast<int>(cfg.integer("auth_failure_hold"));
    s->event_fields = cfg.list("event_fields");
    if (const std::string url = cfg.get("event_webhook"); !url.empty()) {
        try {
            parse_webhook_url(url);
        } catch (const std::invalid_argument& e) {
            throw ConfigError(std::string("event_webhook: ") + e.what());
        }
    }
    s->dkim = load_signer(cfg);
    s->dkim_hold = cfg.get("dkim_missing_key") == "hold";
    s->compliance_hold = cfg.get("compliance_check") == "hold";
    load_loop(cfg, *s);
    load_pools(cfg, *s);
    auto& o = s->smtp;
    o.helo_name = cfg.get("smtp_helo_name");
    o.timeouts.connect = secs(cfg, "smtp_connect_timeout");
    o.timeouts.helo = secs(cfg, "smtp_helo_timeout");
    o.timeouts.mail = secs(cfg, "smtp_mail_timeout");
    o.timeouts.rcpt = secs(cfg, "smtp_rcpt_timeout");
    o.timeouts.data_init = secs(cfg, "smtp_data_init_timeout");
    o.timeouts.data_xfer = secs(cfg, "smtp_data_xfer_timeout");
    o.timeouts.data_done = secs(cfg, "smtp_data_done_timeout");
    o.timeouts.rset = secs(cfg, "smtp_rset_timeout");
    o.timeouts.quit = secs(cfg, "smtp_quit_timeout");
    o.tls = *smtp::parse_tls_level(cfg.get("smtp_tls_security_level"));
    o.tls_ca_file = cfg.get("smtp_tls_CAfile");
    if (!cfg.get("relay_password_file").empty()) s->relay_password = read_secret(cfg.get("relay_password_file"));
    return s;
}

smtp::Options Settings::smtp_for(const std::string& destination) const {
    smtp::Options o = smtp;
    o.tls = *smtp::parse_tls_level(policy.get(destination, "smtp_tls_security_level", cfg));
    o.tls_ca_file = policy.get(destination, "smtp_tls_CAfile", cfg);
    return o;
}

}  // namespace mxlane::qrunner
