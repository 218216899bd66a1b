// fuzz target recipient_token: any token or address is checked without crashing, and only tokens we made verify.
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_input.hpp"
#include "libshared/address.hpp"
#include "libshared/recipient_token.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string dir = fuzz::temp_queue_dir("mxlane-fuzz-rcpt-token");
    const std::string_view input = fuzz::as_text(data, size);
    // A token that verifies is the one made for the recipient it names, up to case:
    // a forged or altered token never passes.
    if (auto ref = recipient_token_check(dir, input)) {
        if (recipient_token_make(dir, *ref) != to_lower(input)) __builtin_trap();
    }
    // As an address: what token_of finds is what tagged_address puts there (the
    // address may come in any case, with blanks and <> around it).
    const std::string address(input);
    const std::string token = token_of(address, "bounces@shop.test", "+");
    if (!token.empty() && to_lower(address).find(to_lower(tagged_address("bounces@shop.test", "+", token))) == std::string::npos)
        __builtin_trap();
    // The input taken as ids: made tokens always verify to the same ids.
    if (size >= 16) {
        RecipientRef ref;
        std::memcpy(&ref.job_id, data, 8);
        std::memcpy(&ref.seq, data + 8, 8);
        auto back = recipient_token_check(dir, recipient_token_make(dir, ref));
        if (!back || !(*back == ref)) __builtin_trap();
    }
    return 0;
}
