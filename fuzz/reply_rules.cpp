// fuzz target reply_rules: any rules file is parsed or refused with FILE:LINE, and a parsed one matches any reply safely.
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "libshared/reply_rules.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(fuzz::as_text(data, size));
    try {
        ReplyRules rules = ReplyRules::parse(text, "fuzz");
        for (const char* reply : {"421 4.7.0 try later", "550 5.1.1 user unknown", "", "\xff\xfe\x80"})
            if (const ReplyRule* r = rules.match(reply); r && r->where.rfind("fuzz:", 0) != 0) __builtin_trap();
        rules.match(text);
    } catch (const ReplyRulesError& e) {
        if (std::string(e.what()).rfind("fuzz:", 0) != 0) __builtin_trap();
    }
    return 0;
}
