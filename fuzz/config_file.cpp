// fuzz target config_file: any text as mxlane.conf gives a Config or a ConfigError "FILE:LINE: ...".
#include <cstring>

#include "fuzz/fuzz_input.hpp"
#include "libshared/config_file.hpp"
#include "libshared/params.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(fuzz::as_text(data, size));
    try {
        Config cfg = Config::parse(text, "fuzz.conf");
        // Every value must expand and convert the way its type says, without throwing
        // anything but ConfigError ($name loops, overflow in a duration...).
        for (const ParamDef& def : param_table()) {
            try {
                (void)cfg.get(std::string(def.name));
                switch (def.type) {
                    case ParamType::integer:
                    case ParamType::size: (void)cfg.integer(std::string(def.name)); break;
                    case ParamType::duration: (void)cfg.seconds(std::string(def.name)); break;
                    case ParamType::durations: (void)cfg.seconds_list(std::string(def.name)); break;
                    default: (void)cfg.list(std::string(def.name)); break;
                }
            } catch (const ConfigError&) {
            }
        }
    } catch (const ConfigError& e) {
        if (std::strncmp(e.what(), "fuzz.conf", 9) != 0) __builtin_trap();  // every error names the file
    }
    return 0;
}
