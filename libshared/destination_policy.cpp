// destination_policy: per-destination overrides, first match wins (exact, .parent, *), and providers (mx:.SUFFIX, mx:HOST).
#include "libshared/destination_policy.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

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

namespace {

std::string read_text(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A host name as MX records give it: lower case, without the root's trailing dot.
std::string host_name(const std::string& name) {
    std::string h = to_lower(name);
    if (h.ends_with('.')) h.pop_back();
    return h;
}

// "mx:.SUFFIX" or "mx:HOST" (already lower case) made canonical, or "" when it is not
// one: labels of letters, digits and hyphens, none empty, a trailing dot ignored.
std::string provider_pattern(const std::string& pattern) {
    std::string name = pattern.substr(3);
    bool suffix = name.starts_with('.');
    if (suffix) name.erase(0, 1);
    if (name.ends_with('.')) name.pop_back();
    if (name.empty() || name.size() > 253) return "";
    std::size_t label = 0;
    for (char ch : name) {
        if (ch == '.') {
            if (label == 0) return "";
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63) return "";
        } else {
            return "";
        }
    }
    if (label == 0) return "";
    return std::string("mx:") + (suffix ? "." : "") + name;
}

std::int64_t to_integer(const std::string& text) {
    std::int64_t v = 0;
    if (!parse_integer(text, v)) parse_duration(text, v);
    return v;
}

}  // namespace

bool DestinationPolicy::per_provider(const std::string& name) {
    static const std::array<const char*, 5> names = {
        "destination_concurrency", "max_messages_per_hour", "max_connections_per_minute",
        "max_messages_per_connection", "destination_backoff"};
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

DestinationPolicy DestinationPolicy::load(const std::string& file) {
    if (file.empty()) return {};
    return parse(read_text(file), file);
}

DestinationPolicy DestinationPolicy::load(const std::string& policy_file, const std::string& providers_file) {
    DestinationPolicy policy = load(policy_file);
    if (providers_file.empty()) return policy;
    return merge(std::move(policy), parse_providers(read_text(providers_file), providers_file));
}

DestinationPolicy DestinationPolicy::merge(DestinationPolicy policy, const DestinationPolicy& providers) {
    std::size_t own = policy.entries_.size();
    for (const Entry& e : providers.entries_) {
        bool replaced = false;
        for (std::size_t i = 0; i < own && !replaced; ++i) replaced = policy.entries_[i].pattern == e.pattern;
        if (!replaced) policy.entries_.push_back(e);
    }
    return policy;
}

DestinationPolicy DestinationPolicy::parse(const std::string& text, const std::string& file) {
    return parse(text, file, false);
}

DestinationPolicy DestinationPolicy::parse_providers(const std::string& text, const std::string& file) {
    return parse(text, file, true);
}

DestinationPolicy DestinationPolicy::parse(const std::string& text, const std::string& file, bool providers_only) {
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
        if (e.provider()) {
            e.pattern = provider_pattern(e.pattern);
            if (e.pattern.empty())
                throw ConfigError(where + "not a provider pattern (mx:.SUFFIX or mx:HOST, a host name): " + words[0]);
        } else if (providers_only) {
            throw ConfigError(where + "a providers file holds mx: lines only, not " + words[0]);
        }
        if (words.size() < 2) throw ConfigError(where + "no settings for " + words[0]);
        for (std::size_t i = 1; i < words.size(); ++i) {
            auto eq = words[i].find('=');
            if (eq == std::string::npos) throw ConfigError(where + "expected name=value: " + words[i]);
            std::string name = words[i].substr(0, eq), value = words[i].substr(eq + 1);
            const ParamDef* def = find_param(name);
            if (!def || !overridable(name))
                throw ConfigError(where + "not a per-destination setting: " + name);
            if (e.provider() && !per_provider(name))
                throw ConfigError(where + name + " is set per domain, not per provider");
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
        if (e.provider()) continue;
        if (e.pattern == "*" || e.pattern == d) return &e;
        if (e.pattern.front() == '.' && d.size() > e.pattern.size() && d.ends_with(e.pattern)) return &e;
    }
    return nullptr;
}

const DestinationPolicy::Entry* DestinationPolicy::provider_for(const std::string& mx_host) const {
    std::string h = host_name(mx_host);
    if (h.empty()) return nullptr;
    for (const auto& e : entries_) {
        if (!e.provider()) continue;
        std::string_view name = std::string_view(e.pattern).substr(3);
        if (name == h) return &e;
        if (name.front() == '.' && h.size() > name.size() && h.ends_with(name)) return &e;
    }
    return nullptr;
}

std::string DestinationPolicy::get(const Entry& e, const std::string& name, const Config& cfg) const {
    if (auto it = e.settings.find(name); it != e.settings.end()) return it->second;
    return cfg.get(name);
}

std::int64_t DestinationPolicy::integer(const Entry& e, const std::string& name, const Config& cfg) const {
    return to_integer(get(e, name, cfg));
}

std::string DestinationPolicy::get(const std::string& domain, const std::string& name,
                                   const Config& cfg) const {
    const Entry* e = match(domain);
    return e ? get(*e, name, cfg) : cfg.get(name);
}

std::int64_t DestinationPolicy::integer(const std::string& domain, const std::string& name,
                                        const Config& cfg) const {
    return to_integer(get(domain, name, cfg));
}

}  // namespace mxlane
