// fuzz target template: any message text and field values render without crashing, and no value adds a header.
#include "fuzz/fuzz_input.hpp"
#include "libshared/header_section.hpp"
#include "libshared/template.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // text NUL name NUL value NUL name NUL value ...
    auto parts = fuzz::split_nul(data, size, 9);
    std::string_view text = parts[0];
    std::vector<std::string> names, values;
    for (std::size_t i = 1; i + 1 < parts.size(); i += 2) {
        names.emplace_back(parts[i]);
        values.emplace_back(parts[i + 1]);
    }
    bool any = has_placeholders(text);
    auto found = placeholders(text);
    if (any != !found.empty()) __builtin_trap();
    for (const auto& n : found)
        if (placeholder_offset(text, n) >= text.size()) __builtin_trap();
    std::string out = render_template(text, names, values, "ann@example.com");
    (void)rename_placeholder(text, found.empty() ? "x" : found[0], "address");
    // Values carry no line breaks into the header section: the rendered headers end where the text's do.
    if (header_section_size(text) == std::string_view::npos) {
        std::size_t lines_in = 0, lines_out = 0;
        for (char c : text) lines_in += c == '\n';
        for (char c : out) lines_out += c == '\n';
        if (lines_out != lines_in) __builtin_trap();
    }
    return 0;
}
