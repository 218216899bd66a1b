// fuzz target destination_policy: any text as a destination_policy or providers file gives a policy or a ConfigError.
#include <cstring>

#include "fuzz/fuzz_input.hpp"
#include "libshared/config_file.hpp"
#include "libshared/destination_policy.hpp"

using namespace mxlane;

namespace {

// Every lookup a caller makes: by domain, by MX host, and the settings of what matched.
void look_up(const DestinationPolicy& p, const std::string& name, const Config& defaults) {
    for (const char* setting : {"destination_concurrency", "max_messages_per_connection", "destination_backoff"}) {
        try {
            (void)p.integer(name, setting, defaults);
            if (const auto* e = p.provider_for(name)) {
                if (!e->provider()) __builtin_trap();
                (void)p.integer(*e, setting, defaults);
            }
        } catch (const ConfigError&) {
        }
    }
    if (const auto* e = p.match(name); e && e->provider()) __builtin_trap();
    (void)p.get(name, "smtp_tls_security_level", defaults);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Text, then (after a NUL) a domain or MX host name to look up, then (after
    // another NUL) a providers file merged after the text.
    auto parts = fuzz::split_nul(data, size, 3);
    static const Config defaults;
    std::string name(parts.size() > 1 ? parts[1] : "example.com");
    DestinationPolicy policy;
    try {
        policy = DestinationPolicy::parse(std::string(parts[0]), "fuzz.policy");
        look_up(policy, name, defaults);
    } catch (const ConfigError& e) {
        if (std::strncmp(e.what(), "fuzz.policy", 11) != 0) __builtin_trap();
    }
    try {
        // The same text as a providers file: mx: lines only, or an error naming the file.
        auto providers = DestinationPolicy::parse_providers(std::string(parts.size() > 2 ? parts[2] : parts[0]),
                                                            "fuzz.providers");
        for (const auto& e : providers.entries())
            if (!e.provider()) __builtin_trap();
        auto merged = DestinationPolicy::merge(policy, providers);
        if (merged.entries().size() < policy.entries().size()) __builtin_trap();
        look_up(merged, name, defaults);
    } catch (const ConfigError& e) {
        if (std::strncmp(e.what(), "fuzz.providers", 14) != 0) __builtin_trap();
    }
    return 0;
}
