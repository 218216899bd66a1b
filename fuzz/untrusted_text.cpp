// fuzz target untrusted_text: any bytes give valid UTF-8, printable text, a log-safe line, an address list or an error.
#include "fuzz/fuzz_input.hpp"
#include "libshared/csv.hpp"
#include "libshared/log.hpp"
#include "libshared/printable.hpp"
#include "qrunner/ctl/mailbox_list.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = fuzz::as_text(data, size);
    std::string utf8 = valid_utf8(in);
    if (!is_valid_utf8(utf8) || valid_utf8(utf8) != utf8) __builtin_trap();  // valid, and a fixed point
    if (is_valid_utf8(in) != (utf8 == in)) __builtin_trap();
    std::string shown = printable(in);
    if (!is_valid_utf8(shown)) __builtin_trap();
    for (unsigned char c : shown)
        if (c < 0x20 || c == 0x7F) __builtin_trap();
    std::string logged = log::safe_text(in);
    if (logged.find("to=") != std::string::npos || logged.find("status=") != std::string::npos) __builtin_trap();
    if (csv_uninert(csv_inert(in)) != in) __builtin_trap();
    try {
        for (const auto& m : ctl::parse_address_list(in))
            if (m.address.find('@') == std::string::npos) __builtin_trap();
    } catch (const ctl::AddressSyntaxError&) {
    }
    return 0;
}
