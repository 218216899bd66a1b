// destination_policy: per-destination overrides, first match wins (exact, .parent, *), and providers (mx:.SUFFIX, mx:HOST).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mxlane {
class Config;

class DestinationPolicy {
public:
    struct Entry {
        std::string pattern;                         // "gmail.com", ".example.net", "*", "mx:.google.com"
        std::map<std::string, std::string> settings; // name -> value, checked against the table
        int line = 0;
        // A provider line: it groups destinations by their best MX host's name.
        bool provider() const { return pattern.starts_with("mx:"); }
    };

    // Parameters a policy line may set.
    static bool overridable(const std::string& name);
    // Of those, the ones a provider (mx:) line may set: limits that make sense shared.
    static bool per_provider(const std::string& name);

    // Empty file name: no overrides. Throws ConfigError "FILE:LINE: problem".
    static DestinationPolicy load(const std::string& file);
    // destination_policy's entries, then each providers-file entry whose pattern
    // no destination_policy line has. Either name may be empty.
    static DestinationPolicy load(const std::string& policy_file, const std::string& providers_file);
    static DestinationPolicy parse(const std::string& text, const std::string& file);
    // A providers file: the same syntax, mx: lines only.
    static DestinationPolicy parse_providers(const std::string& text, const std::string& file);
    // policy's entries, then those of providers whose pattern policy has not.
    static DestinationPolicy merge(DestinationPolicy policy, const DestinationPolicy& providers);

    // First domain entry matching `domain`: exact name, then ".parent" suffix, or "*".
    // Never an mx: entry.
    const Entry* match(const std::string& domain) const;
    // First mx: entry matching the MX host name (any case, a trailing dot ignored), or nullptr.
    const Entry* provider_for(const std::string& mx_host) const;

    // The override for `name` at `domain`, else the global value from cfg.
    std::string get(const std::string& domain, const std::string& name, const Config& cfg) const;
    std::int64_t integer(const std::string& domain, const std::string& name, const Config& cfg) const;
    // The entry's setting `name`, else the global value from cfg.
    std::string get(const Entry& e, const std::string& name, const Config& cfg) const;
    std::int64_t integer(const Entry& e, const std::string& name, const Config& cfg) const;

    const std::vector<Entry>& entries() const { return entries_; }

private:
    static DestinationPolicy parse(const std::string& text, const std::string& file, bool providers_only);
    std::vector<Entry> entries_;
};

}  // namespace mxlane
