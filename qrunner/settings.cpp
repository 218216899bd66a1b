// settings: the qrunner's configuration as typed values, rebuilt whole on SIGHUP.
#include "qrunner/settings.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

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

}  // namespace

std::string RelayTarget::label() const {
    return (mx_lookup ? host : "[" + host + "]") + ":" + std::to_string(port);
}

RelayTarget parse_relay_host(const std::string& text) {
    RelayTarget t;
    std::string rest = text;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos) throw ConfigError("relay_host: missing ']' in " + text);
        t.host = rest.substr(1, close - 1);
        t.mx_lookup = false;
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') throw ConfigError("relay_host: expected :port after ] in " + text);
    } else {
        auto colon = rest.rfind(':');
        t.host = rest.substr(0, colon);
        rest = colon == std::string::npos ? "" : rest.substr(colon);
    }
    if (!rest.empty()) {
        try {
            std::size_t used = 0;
            t.port = std::stoi(rest.substr(1), &used);
            if (used != rest.size() - 1 || t.port < 1 || t.port > 65535) throw std::invalid_argument("port");
        } catch (const std::exception&) {
            throw ConfigError("relay_host: bad port in " + text);
        }
    }
    if (t.host.empty()) throw ConfigError("relay_host: no host in " + text);
    return t;
}

std::shared_ptr<const Settings> Settings::load(const Config& cfg) {
    auto s = std::make_shared<Settings>();
    s->cfg = cfg;
    s->policy = DestinationPolicy::load(cfg.get("destination_policy"));
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
    s->notify = notify == "none" ? NotifyMode::none : notify == "each" ? NotifyMode::each : NotifyMode::summary;
    s->myhostname = cfg.get("myhostname");
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
