// fuzz_input: splits one fuzzer input into the pieces a target feeds its parser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::fuzz {

// The input cut at every NUL byte: fields for targets that need several strings
// (a sender and recipients, header names and values, a record's key and data).
inline std::vector<std::string_view> split_nul(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
    std::vector<std::string_view> parts;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (parts.size() + 1 < max_parts) {
        std::size_t nul = in.find('\0');
        if (nul == std::string_view::npos) break;
        parts.push_back(in.substr(0, nul));
        in.remove_prefix(nul + 1);
    }
    parts.push_back(in);
    return parts;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// A private queue directory under /tmp (for targets that need the loop key),
// removed with the key file when the fuzzer exits. Call it once per program.
inline std::string temp_queue_dir(const std::string& prefix) {
    static std::string dir;
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    dir = tmpl;
    std::atexit([] { std::filesystem::remove_all(dir); });
    return dir;
}

}  // namespace mxlane::fuzz
