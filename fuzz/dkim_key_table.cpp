// fuzz target dkim_key_table: any text as a dkim_key_table gives lines or a KeyError naming the table and line;
// every line it gives has a lower-case domain, a selector and an absolute path, and a second parse of them agrees.
#include <cstring>

#include "fuzz/fuzz_input.hpp"
#include "qrunner/dkim/key_table.hpp"

using namespace mxlane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<dkim::KeyLine> lines;
    try {
        lines = dkim::parse_key_table(fuzz::as_text(data, size), "fuzz.keys");
    } catch (const dkim::KeyError& e) {
        if (std::strncmp(e.what(), "fuzz.keys:", 10) != 0) __builtin_trap();
        return 0;
    }
    std::string again;
    for (const auto& l : lines) {
        if (l.domain.empty() || l.selector.empty() || l.file.empty() || l.file[0] != '/' || l.line < 1) __builtin_trap();
        for (char c : l.domain)
            if (c >= 'A' && c <= 'Z') __builtin_trap();
        again += l.domain + " " + l.selector + " " + l.file + "\n";
    }
    auto second = dkim::parse_key_table(again, "fuzz.keys");
    if (second.size() != lines.size()) __builtin_trap();
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (second[i].domain != lines[i].domain || second[i].selector != lines[i].selector ||
            second[i].file != lines[i].file)
            __builtin_trap();
    return 0;
}
