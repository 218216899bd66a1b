// destination_policy: per-destination overrides, first match wins (exact, .parent, *).
#include "libshared/destination_policy.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "libshared/address.hpp"
#include "libshared/config_file.hpp"
#include "libshared/params.hpp"

namespace mxlane {

bool DestinationPolicy::overridable(const std::string& name) {
    static const std::array<const char*, 8> names = {
        "destination_concurrency",    "max_messages_per_hour",
        "max_connections_per_minute", "max_recipients_per_transaction",
        "max_messages_per_connection", "smtp_tls_security_level",
        "destination_backoff",        "smtp_tls_CAfile"};
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

DestinationPolicy DestinationPolicy::load(const std::string& file) {
    if (file.empty()) return {};
    std::ifstream in(file);
    if (!in) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), file);
}

DestinationPolicy DestinationPolicy::parse(const std::string& text, const std::string& file) {
    DestinationPolicy policy;
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        auto words = split_list(line.substr(0, line.find('#')));
        if (words.empty()) continue;
        auto where = file + ":" + std::to_string(lineno) + ": ";
        Entry e{to_lower(words[0]), {}, lineno};
        if (e.pattern.find('=') != std::string::npos)
            throw ConfigError(where + "a line starts with the destination, not a setting: " + words[0]);
        if (words.size() < 2) throw ConfigError(where + "no settings for " + words[0]);
        for (std::size_t i = 1; i < words.size(); ++i) {
            auto eq = words[i].find('=');
            if (eq == std::string::npos) throw ConfigError(where + "expected name=value: " + words[i]);
            std::string name = words[i].substr(0, eq), value = words[i].substr(eq + 1);
            const ParamDef* def = find_param(name);
            if (!def || !overridable(name))
                throw ConfigError(where + "not a per-destination setting: " + name);
            if (auto problem = check_param_value(*def, value); !problem.empty())
                throw ConfigError(where + name + ": " + problem);
            e.settings[name] = value;
        }
        policy.entries_.push_back(std::move(e));
    }
    return policy;
}

const DestinationPolicy::Entry* DestinationPolicy::match(const std::string& domain) const {
    std::string d = to_lower(domain);
    for (const auto& e : entries_) {
        if (e.pattern == "*" || e.pattern == d) return &e;
        if (e.pattern.front() == '.' && d.size() > e.pattern.size() && d.ends_with(e.pattern)) return &e;
    }
    return nullptr;
}

std::string DestinationPolicy::get(const std::string& domain, const std::string& name,
                                   const Config& cfg) const {
    if (const Entry* e = match(domain)) {
        if (auto it = e->settings.find(name); it != e->settings.end()) return it->second;
    }
    return cfg.get(name);
}

std::int64_t DestinationPolicy::integer(const std::string& domain, const std::string& name,
                                        const Config& cfg) const {
    std::int64_t v = 0;
    std::string text = get(domain, name, cfg);
    if (!parse_integer(text, v)) parse_duration(text, v);
    return v;
}

}  // namespace mxlane
namespace mxlane {  // TEMP-STUB
const DestinationPolicy::Entry* DestinationPolicy::provider_for(const std::string& mx_host) const {
    for (const auto& e : entries_)
        if (e.provider() && (mx_host.ends_with(e.pattern.substr(3)))) return &e;
    return nullptr;
}
std::int64_t DestinationPolicy::integer(const Entry& e, const std::string& name, const Config& cfg) const {
    std::string text = cfg.get(name);
    if (auto it = e.settings.find(name); it != e.settings.end()) text = it->second;
    std::int64_t v = 0;
    if (!parse_integer(text, v)) parse_duration(text, v);
    return v;
}
}
