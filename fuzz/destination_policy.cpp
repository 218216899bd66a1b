// fuzz target destination_policy: any text as a destination_policy file gives a policy or a ConfigError.
#include <cstring>

#include "fuzz/fuzz_input.hpp"
#include "libshared/config_file.hpp"
#include "libshared/destination_policy.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Text, then (after a NUL) a domain to look up in what was parsed.
    auto parts = fuzz::split_nul(data, size, 2);
    static const Config defaults;
    try {
        DestinationPolicy p = DestinationPolicy::parse(std::string(parts[0]), "fuzz.policy");
        std::string domain(parts.size() > 1 ? parts[1] : "example.com");
        for (const char* name : {"destination_concurrency", "max_messages_per_connection"}) {
            try {
                (void)p.integer(domain, name, defaults);
            } catch (const ConfigError&) {
            }
        }
        (void)p.get(domain, "smtp_tls_security_level", defaults);
    } catch (const ConfigError& e) {
        if (std::strncmp(e.what(), "fuzz.policy", 11) != 0) __builtin_trap();
    }
    return 0;
}
