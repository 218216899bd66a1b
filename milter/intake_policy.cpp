// intake_policy: is this message a bulk job, and is that already known at this step?
#include "milter/intake_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "libshared/address.hpp"
#include "libshared/config_file.hpp"
#include "libshared/header_section.hpp"
#include "libshared/text.hpp"

namespace mxlane::milter {
namespace {

bool matches_any(const std::vector<std::string>& patterns, std::string_view address) {
    for (const auto& pat : patterns)
        if (address_matches(address, pat)) return true;
    return false;
}

}  // namespace

bool client_may_send_bulk(const IntakePolicy& p, const sockaddr* hostaddr) {
    if (hostaddr && (hostaddr->sa_family == AF_INET || hostaddr->sa_family == AF_INET6))
        return p.clients.contains(hostaddr);
    return p.clients.contains("127.0.0.1");  // mail the MTA got locally
}

std::vector<std::string> expand_patterns(const std::vector<std::string>& entries, const std::string& param) {
    std::vector<std::string> out;
    for (const auto& e : entries) {
        if (e.empty() || e.front() != '/') {
            out.push_back(e);
            continue;
        }
        std::ifstream in(e);
        if (!in) throw ConfigError(param + ": cannot read " + e + ": " + std::strerror(errno));
        std::string line;
        while (std::getline(in, line)) {
            std::string_view p = trim(line);
            if (!p.empty() && p.front() != '#') out.emplace_back(p);
        }
    }
    return out;
}

IntakePolicy IntakePolicy::from_config(const Config& cfg) {
    IntakePolicy p;
    p.bulk_header = std::string(trim(cfg.get("bulk_header")));
    p.pool_header = std::string(trim(cfg.get("pool_header")));
    p.min_recipients = static_cast<std::size_t>(cfg.integer("bulk_min_recipients"));
    auto where = [&](const char* name) { return cfg.file() + ": " + name; };
    p.sender_patterns = expand_patterns(cfg.list("bulk_senders"), where("bulk_senders"));
    p.sasl_patterns = expand_patterns(cfg.list("bulk_sasl_users"), where("bulk_sasl_users"));
    p.clients = NetworkList::parse(cfg.get("bulk_clients"));
    for (const auto& name : cfg.list("job_key_headers"))
        if (!trim(name).empty()) p.job_key_headers.emplace_back(trim(name));
    p.job_idle_close_ms = cfg.seconds("job_idle_close") * 1000;
    return p;
}

bool sender_is_bulk(const IntakePolicy& p, std::string_view sender) {
    return !sender.empty() && matches_any(p.sender_patterns, sender);
}

bool sasl_login_is_bulk(const IntakePolicy& p, std::string_view login) {
    if (login.empty()) return false;
    std::string lower = to_lower(login);
    for (const auto& pat : p.sasl_patterns)
        if (to_lower(pat) == lower) return true;
    return login.find('@') != std::string_view::npos && matches_any(p.sasl_patterns, login);
}

Verdict decide(const IntakePolicy& p, const IntakeFacts& f, Step step) {
    if (f.bulk_sender || f.bulk_login || f.bulk_header_seen) return Verdict::bulk;
    if (p.min_recipients > 0 && f.recipients >= p.min_recipients) return Verdict::bulk;
    // More recipients may come until DATA; the header can only be ruled out at end of headers.
    bool count_open = p.min_recipients > 0 && step < Step::data;
    bool header_open = !p.bulk_header.empty() && step < Step::eoh;
    return count_open || header_open ? Verdict::undecided : Verdict::ordinary;
}

bool is_bulk_header(const IntakePolicy& p, std::string_view name) {
    return !p.bulk_header.empty() && same_field_name(trim(name), p.bulk_header);
}

bool is_pool_header(const IntakePolicy& p, std::string_view name) {
    return !p.pool_header.empty() && same_field_name(trim(name), p.pool_header);
}

std::string job_name_from_header(std::string_view value) { return single_line_value(value); }

void JobKeyFields::note(const IntakePolicy& p, std::string_view name, std::string_view value) {
    if (is_bulk_header(p, name)) {
        if (!bulk_header) bulk_header = job_name_from_header(value);
        return;
    }
    if (!subject && same_field_name(trim(name), "Subject")) subject = single_line_value(value);
    key_headers.resize(p.job_key_headers.size());
    for (std::size_t i = 0; i < p.job_key_headers.size(); ++i)
        if (!key_headers[i] && same_field_name(trim(name), p.job_key_headers[i])) {
            // An empty value names nothing: a later field of the same name may.
            if (std::string v = single_line_value(value); !v.empty()) key_headers[i] = std::move(v);
        }
}

JobKey job_key(const JobKeyFields& f) {
    if (f.bulk_header) return {*f.bulk_header, f.bulk_header->empty() ? KeyedBy::none : KeyedBy::bulk_header};
    for (const auto& v : f.key_headers)
        if (v) return {*v, KeyedBy::key_header};
    std::string subject = f.subject ? *f.subject : std::string();
    return {subject.empty() ? std::string("(no subject)") : subject, KeyedBy::sender_subject};
}

}  // namespace mxlane::milter
