// gen_conf_doc: writes mxlane.conf(5) from its template and the parameter table, so the page cannot drift.
//
// usage: gen_conf_doc TEMPLATE > mxlane.conf.5
// The template's line `.\" @PARAMETERS@` becomes one .TP entry per parameter,
// in param_table() order: name, default, the doc line, and the accepted values.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "libshared/params.hpp"

using namespace mxlane;

namespace {

// Text safe in a roff body: backslashes doubled as \e, and a leading . or '
// (a request) defused with \&.
std::string roff(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
    return out;
}

// 86400 -> "1d", 300 -> "5m", 90 -> "90s": the largest unit that divides evenly.
std::string seconds_text(std::int64_t s) {
    if (s != 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
    if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

std::string choices_text(std::string_view choices) {
    std::string out;
    while (true) {
        auto bar = choices.find('|');
        if (!out.empty()) out += bar == std::string_view::npos ? " or " : ", ";
        out += "\\fB" + roff(choices.substr(0, bar)) + "\\fR";
        if (bar == std::string_view::npos) break;
        choices.remove_prefix(bar + 1);
    }
    return out;
}

// What values the parameter takes, from its type and bounds.
std::string accepts(const ParamDef& p) {
    switch (p.type) {
        case ParamType::string: return "";
        case ParamType::path: return "A file or directory name.";
        case ParamType::list: return "A list, separated by commas or white space.";
        case ParamType::networks:
            return "Addresses and networks (\\fB127.0.0.0/8\\fR, \\fB[::1]/128\\fR), separated by commas or white space.";
        case ParamType::servers:
            return "IP addresses, each with an optional port (\\fB192.0.2.1\\fR, \\fB192.0.2.1:53\\fR, \\fB[::1]:53\\fR), separated by commas or white space.";
        case ParamType::hostport:
            return "\\fB[\\fIhost\\fB]:\\fIport\\fR or \\fIhost\\fB:\\fIport\\fR (the port may be left out: 25).";
        case ParamType::socket:
            return "\\fBunix:\\fIpath\\fR, \\fBinet:\\fIport\\fB@\\fIhost\\fR or \\fBinet6:\\fIport\\fB@\\fIhost\\fR.";
        case ParamType::boolean: return "\\fByes\\fR or \\fBno\\fR.";
        case ParamType::choice: return "One of " + choices_text(p.choices) + ".";
        case ParamType::integer:
            return "A whole number from " + std::to_string(p.min) + " to " + std::to_string(p.max) + ".";
        case ParamType::size:
            return "A size in bytes from " + std::to_string(p.min) + " to " + std::to_string(p.max) + ".";
        case ParamType::duration:
            return "A time from " + seconds_text(p.min) + " to " + seconds_text(p.max) + ".";
        case ParamType::percent: return "A percentage from 0 to 100, e.g. \\fB0.3%\\fR.";
        case ParamType::integers:
            return "A list of whole numbers, each from " + std::to_string(p.min) + " to " + std::to_string(p.max) + ".";
        case ParamType::durations:
            return "A list of times, each from " + seconds_text(p.min) + " to " + seconds_text(p.max) + ".";
    }
    return "";
}

void print_parameters(std::ostream& out) {
    for (const ParamDef& p : param_table()) {
        out << ".TP\n\\fB" << roff(p.name) << "\\fR (default: ";
        if (p.default_value.empty()) out << "empty";
        else out << "\\fI" << roff(p.default_value) << "\\fR";
        out << ")\n";
        out << roff(p.doc) << ".\n";
        if (std::string a = accepts(p); !a.empty()) out << a << "\n";
        if (p.restart) out << "A change takes effect when the program restarts, not on SIGHUP.\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fputs("usage: gen_conf_doc TEMPLATE\n", stderr);
        return 2;
    }
    std::ifstream in(argv[1]);
    if (!in) {
        std::fprintf(stderr, "gen_conf_doc: cannot read %s\n", argv[1]);
        return 1;
    }
    bool placed = false;
    for (std::string line; std::getline(in, line);) {
        if (line == ".\\\" @PARAMETERS@") {
            print_parameters(std::cout);
            placed = true;
        } else {
            std::cout << line << "\n";
        }
    }
    if (!placed) {
        std::fprintf(stderr, "gen_conf_doc: %s has no .\\\" @PARAMETERS@ line\n", argv[1]);
        return 1;
    }
    return std::cout.good() ? 0 : 1;
}
