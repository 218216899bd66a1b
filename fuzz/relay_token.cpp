// fuzz target relay_token: any X-Mxlane-Relayed value is checked without crashing, and none but ours is valid.
#include <string_view>
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "libshared/loop_token.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string dir = fuzz::temp_queue_dir("mxlane-fuzz-token");
    static const std::int64_t now = 1700000000;
    static const LoopBinding binding{"news@shop.test", {"a@one.test"}, std::string(64, 'e')};
    static const std::string ours = loop_token_make_at(dir, "J00002A", 17, now, binding);
    std::string token(fuzz::as_text(data, size));
    bool valid = loop_token_valid_at(dir, token, 3600, now, binding);
    // The only valid token is ours (folding white space around it allowed); a forged one never passes.
    std::string_view core = token;
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0'; };
    while (!core.empty() && blank(core.front())) core.remove_prefix(1);
    while (!core.empty() && blank(core.back())) core.remove_suffix(1);
    if (valid && core != ours) __builtin_trap();
    if (!loop_token_valid_at(dir, ours, 3600, now, binding)) __builtin_trap();
    return 0;
}
