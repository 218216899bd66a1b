// params: the one table of mxlane.conf parameters (name, type, default, bounds, doc).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

enum class ParamType {
    string,    // free text
    path,      // file or directory name (may be empty where the doc says so)
    integer,   // whole number within [min, max]
    size,      // bytes, whole number within [min, max]
    duration,  // seconds; units s m h d; bare number is seconds
    durations, // white-space or comma separated list of durations
    integers,  // white-space or comma separated list of whole numbers within [min, max] (may be empty)
    choice,    // one of `choices` (| separated)
    list,      // white-space or comma separated list of words
    boolean,   // yes / no
    networks,  // addresses and networks: 127.0.0.0/8, [::1]/128 (comma or white-space separated)
    servers,   // IP addresses with an optional port: 192.0.2.1, 192.0.2.1:53, [::1]:53 (comma or white-space separated)
    hostport,  // [host]:port, host:port, [host] or host
    socket,    // unix:PATH, inet:PORT@HOST, inet6:PORT@HOST
    percent,   // a share from 0 to 100 percent: 0.3% (the % may be left out)
};

struct ParamDef {
    std::string_view name;
    ParamType type;
    std::string_view default_value;  // as written in mxlane.conf; may use $name
    std::int64_t min = 0;            // integer, size, duration: lower bound
    std::int64_t max = INT64_MAX;    // upper bound
    std::string_view choices;        // choice: "a|b|c"
    std::string_view doc;            // one line for mxlanectl config and mxlane.conf
    bool restart = false;            // the qrunner applies a change only when restarted, not on SIGHUP
};

// Every parameter mxlane knows, in the order mxlanectl config prints them.
std::span<const ParamDef> param_table();
const ParamDef* find_param(std::string_view name);

// Validates `value` (already $-expanded) for `def`; returns an empty string when
// it is acceptable, else the problem in a few words ("not a duration: 5x").
std::string check_param_value(const ParamDef& def, std::string_view value);

// Parsing helpers shared by the config and the destination policy.
bool parse_duration(std::string_view text, std::int64_t& seconds);
bool parse_integer(std::string_view text, std::int64_t& value);
std::vector<std::string> split_list(std::string_view text);  // on white space and commas
// "0.3%" or "0.3" -> 0.3 (percent, 0 to 100); false for anything else.
bool parse_percent(std::string_view text, double& percent);

// "[host]:port", "host:port", "[host]", "host" (port: default_port). brackets: the host
// was written in [ ] (no MX lookup). Returns an empty string when acceptable, else the problem.
std::string parse_host_port(std::string_view text, int default_port, std::string& host, int& port,
                            bool& brackets);

}  // namespace mxlane
