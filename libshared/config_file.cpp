// config_file: reads mxlane.conf (main.cf syntax), expands $name, checks every value.
#include "libshared/config_file.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "libshared/params.hpp"
#include "libshared/text.hpp"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

namespace mxlane {
namespace {

bool valid_name(const std::string& name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

std::string where(const std::string& file, int line) {
    return file + ":" + std::to_string(line) + ": ";
}

// As Postfix finds myhostname: gethostname(), and when that has no dot, the
// canonical name getaddrinfo() gives for it (/etc/hosts, DNS). Found once.
std::string system_hostname() {
    static const std::string name = [] {
        char buf[256] = {};
        if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
        std::string host = buf;
        if (host.find('.') != std::string::npos) return host;
        addrinfo hints{};
        hints.ai_flags = AI_CANONNAME;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0 && res) {
            if (res->ai_canonname && std::strchr(res->ai_canonname, '.')) host = res->ai_canonname;
            freeaddrinfo(res);
        }
        return host;
    }();
    return name;
}

}  // namespace

std::string Config::default_path() {
    if (const char* env = std::getenv("MXLANE_CONFIG"); env && *env) return env;
    return std::string(SYSCONFDIR) + "/mxlane/mxlane.conf";
}

Config Config::load(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), file);
}

Config Config::parse(const std::string& text, const std::string& file) {
    Config cfg;
    cfg.file_ = file;
    std::istringstream in(text);
    std::string line, logical;
    int lineno = 0, logical_line = 0;
    auto finish = [&]() {
        if (logical.empty()) return;
        auto eq = logical.find('=');
        if (eq == std::string::npos)
            throw ConfigError(where(file, logical_line) + "expected \"name = value\": " + std::string(trim(logical)));
        std::string name(trim(logical.substr(0, eq)));
        if (!valid_name(name))
            throw ConfigError(where(file, logical_line) + "bad parameter name: \"" + name + "\"");
        if (!find_param(name))
            throw ConfigError(where(file, logical_line) + "unknown parameter: " + name);
        cfg.values_[name] = Setting{std::string(trim(logical.substr(eq + 1))), logical_line};
        logical.clear();
    };
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string t(trim(line));
        if (t.empty() || t[0] == '#') continue;  // comments and blank lines end nothing
        if (std::isspace(static_cast<unsigned char>(line[0]))) {
            if (logical.empty())
                throw ConfigError(where(file, lineno) + "continuation line with no parameter before it");
            logical += ' ' + t;
            continue;
        }
        finish();
        logical = t;
        logical_line = lineno;
    }
    finish();
    cfg.check_all();
    return cfg;
}

void Config::check_all() const {
    for (const auto& [name, setting] : values_) {
        std::string value;
        try {
            value = get(name);
        } catch (const ConfigError& e) {
            throw ConfigError(where(file_, setting.line) + name + ": " + e.what());
        }
        if (auto problem = check_param_value(*find_param(name), value); !problem.empty())
            throw ConfigError(where(file_, setting.line) + name + ": " + problem);
    }
}

void Config::set(const std::string& name, const std::string& value) {
    const ParamDef* def = find_param(name);
    if (!def) throw ConfigError("unknown parameter: " + name);
    values_[name] = Setting{value, 0};
    if (auto problem = check_param_value(*def, get(name)); !problem.empty())
        throw ConfigError(name + ": " + problem);
}

std::string Config::raw(const std::string& name) const {
    if (auto it = values_.find(name); it != values_.end()) return it->second.raw;
    const ParamDef* def = find_param(name);
    if (!def) throw ConfigError("unknown parameter $" + name);
    if (name == "myhostname" && def->default_value.empty()) return system_hostname();
    return std::string(def->default_value);
}

// $name and ${name} expand to that parameter's effective value (Postfix semantics).
std::string Config::expand(const std::string& value, int depth) const {
    if (depth > 20) throw ConfigError("$name expansion loops");
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '$') {
            out += value[i];
            continue;
        }
        if (i + 1 < value.size() && value[i + 1] == '$') {
            out += '$';
            ++i;
            continue;
        }
        std::size_t start = i + 1, end;
        bool braced = start < value.size() && (value[start] == '{' || value[start] == '(');
        if (braced) {
            char close = value[start] == '{' ? '}' : ')';
            end = value.find(close, start + 1);
            if (end == std::string::npos) throw ConfigError("unterminated ${ in value");
            out += expand(raw(value.substr(start + 1, end - start - 1)), depth + 1);
            i = end;
        } else {
            end = start;
            while (end < value.size() &&
                   (std::isalnum(static_cast<unsigned char>(value[end])) || value[end] == '_'))
                ++end;
            if (end == start) throw ConfigError("lone $ in value (write $$ for a dollar sign)");
            out += expand(raw(value.substr(start, end - start)), depth + 1);
            i = end - 1;
        }
    }
    return out;
}

std::string Config::get(const std::string& name) const { return expand(raw(name), 0); }

std::int64_t Config::integer(const std::string& name) const {
    std::int64_t v = 0;
    parse_integer(get(name), v);
    return v;
}

std::int64_t Config::seconds(const std::string& name) const {
    std::int64_t v = 0;
    parse_duration(get(name), v);
    return v;
}

std::vector<std::int64_t> Config::seconds_list(const std::string& name) const {
    std::vector<std::int64_t> out;
    for (const auto& item : split_list(get(name))) {
        std::int64_t v = 0;
        parse_duration(item, v);
        out.push_back(v);
    }
    return out;
}

std::vector<std::string> Config::list(const std::string& name) const {
    return split_list(get(name));
}

}  // namespace mxlane
