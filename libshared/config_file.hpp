// config_file: mxlane.conf in Postfix main.cf syntax -> checked, expanded parameter values.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mxlane {

// One line naming the file, the line and the problem: "FILE:LINE: problem".
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Config {
public:
    // Every parameter at its default (no file).
    Config() = default;

    // Reads and checks FILE; throws ConfigError on any problem.
    static Config load(const std::string& file);

    // Parses text as if read from `file` (for tests and the destination policy's checks).
    static Config parse(const std::string& text, const std::string& file);

    // -c FILE wins, then $MXLANE_CONFIG, then SYSCONFDIR/mxlane/mxlane.conf.
    static std::string default_path();

    const std::string& file() const { return file_; }

    // Effective value with $name expanded. The name must be in the table.
    std::string get(const std::string& name) const;
    std::int64_t integer(const std::string& name) const;        // integer, size
    std::int64_t seconds(const std::string& name) const;        // duration
    std::vector<std::int64_t> seconds_list(const std::string& name) const;  // durations
    std::vector<std::string> list(const std::string& name) const;
    bool set_in_file(const std::string& name) const { return values_.contains(name); }
    // The value as written (file or default), before $name expansion.
    std::string unexpanded(const std::string& name) const { return raw(name); }

    // Overrides one value (tests, command line); checks it like the file does.
    void set(const std::string& name, const std::string& value);

private:
    struct Setting {
        std::string raw;
        int line = 0;
    };
    std::string raw(const std::string& name) const;
    std::string expand(const std::string& value, int depth) const;
    void check_all() const;

    std::string file_;
    std::map<std::string, Setting> values_;
};

}  // namespace mxlane
