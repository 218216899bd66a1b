// destination_policy: per-destination overrides, first match wins (exact, .parent, *).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace mxlane {
class Config;

class DestinationPolicy {
public:
    struct Entry {
        std::string pattern;                         // "gmail.com", ".example.net", "*"
        std::map<std::string, std::string> settings; // name -> value, checked against the table
        int line = 0;
        bool provider() const { return pattern.starts_with("mx:"); }  // TEMP-STUB
    };
    const Entry* provider_for(const std::string& mx_host) const;  // TEMP-STUB
    std::int64_t integer(const Entry& e, const std::string& name, const Config& cfg) const;

    // Parameters a policy line may set.
    static bool overridable(const std::string& name);

    // Empty file name: no overrides. Throws ConfigError "FILE:LINE: problem".
    static DestinationPolicy load(const std::string& file);
    static DestinationPolicy parse(const std::string& text, const std::string& file);

    // First entry matching `domain`: exact name, then ".parent" suffix, or "*".
    const Entry* match(const std::string& domain) const;

    // The override for `name` at `domain`, else the global value from cfg.
    std::string get(const std::string& domain, const std::string& name, const Config& cfg) const;
    std::int64_t integer(const std::string& domain, const std::string& name, const Config& cfg) const;

    const std::vector<Entry>& entries() const { return entries_; }

private:
    std::vector<Entry> entries_;
};

}  // namespace mxlane
