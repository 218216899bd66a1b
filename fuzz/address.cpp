// fuzz target address: any envelope address or pattern is checked and split without crashing.
#include "fuzz/fuzz_input.hpp"
#include "libshared/address.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // address NUL pattern
    auto parts = fuzz::split_nul(data, size, 2);
    std::string address = strip_brackets(parts[0]);
    bool valid = valid_address(address);
    std::string domain = domain_of(address), local = local_part_of(address);
    if (valid && domain.empty()) __builtin_trap();  // a valid address has a domain to route by
    (void)to_lower(address);
    if (parts.size() > 1) (void)address_matches(address, parts[1]);
    return 0;
}
