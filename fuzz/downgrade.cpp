// fuzz target downgrade: any stored message re-encodes for a server without 8BITMIME without
// crashing, into valid wire form (CRLF lines, dot-stuffed), and a second pass changes nothing.
#include "fuzz/fuzz_input.hpp"
#include "qrunner/smtp/downgrade.hpp"
#include "qrunner/smtp/message_data.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string wire = smtp::to_wire(fuzz::as_text(data, size)).text;
    std::string once = smtp::downgrade_to_7bit(wire);
    std::string_view rest = once;
    while (!rest.empty()) {
        std::size_t end = rest.find("\r\n");
        if (end == std::string_view::npos) __builtin_trap();  // every line ends in CRLF
        std::string_view line = rest.substr(0, end);
        if (line.find_first_of("\r\n") != std::string_view::npos) __builtin_trap();  // no bare CR or LF
        if (!line.empty() && line[0] == '.' && (line.size() < 2 || line[1] != '.')) __builtin_trap();
        rest.remove_prefix(end + 2);
    }
    if (smtp::downgrade_to_7bit(once) != once) __builtin_trap();  // what is 7-bit stays as it is
    return 0;
}
