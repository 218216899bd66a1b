// fuzz target mime: QP, base64 and encoded-word round trips of any bytes; any message rendered with any values adds no header field.
#include <optional>

#include "fuzz/fuzz_input.hpp"
#include "libshared/header_section.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/render_plan.hpp"

using namespace mxlane;

namespace {

void check_lines(const std::string& encoded, std::size_t max) {
    std::size_t pos = 0;
    for (;;) {
        std::size_t end = encoded.find("\r\n", pos);
        std::string_view line = std::string_view(encoded).substr(pos, end == std::string::npos ? end : end - pos);
        if (line.size() > max) __builtin_trap();
        for (char c : line)
            if (static_cast<unsigned char>(c) >= 0x80 || c == '\r' || c == '\n') __builtin_trap();
        if (end == std::string::npos) return;
        pos = end + 2;
    }
}

bool mime_field(std::string_view name) {
    return same_field_name(name, "mime-version") || same_field_name(name, "content-type") ||
           same_field_name(name, "content-transfer-encoding");
}

// How many header fields, and how many of them MIME ones; nullopt when a line of the
// section is not a field (a value placed there could make it one, or end the section).
std::optional<std::pair<std::size_t, std::size_t>> fields(std::string_view text) {
    std::pair<std::size_t, std::size_t> n{0, 0};
    for (const auto& h : parse_header_section(text)) {
        if (h.name.empty()) return std::nullopt;
        ++(mime_field(h.name) ? n.second : n.first);
    }
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // text NUL value NUL value
    auto parts = fuzz::split_nul(data, size, 3);
    std::string_view text = parts[0];
    std::string v1(parts.size() > 1 ? parts[1] : text), v2(parts.size() > 2 ? parts[2] : "");

    std::string qp = mime::qp_encode(v1);
    check_lines(qp, 76);
    if (mime::qp_decode(qp) != v1) __builtin_trap();
    std::string b64 = mime::base64_encode(v1);
    check_lines(b64, 76);
    if (mime::base64_decode(b64) != v1) __builtin_trap();
    std::string joined;
    for (const auto& w : mime::encode_words(v1)) {
        if (w.size() > 75 || w.find_first_of(" \t\r\n") != std::string::npos) __builtin_trap();
        joined += (joined.empty() ? "" : " ") + w;
    }
    if (mime::decode_words(joined) != v1) __builtin_trap();
    (void)mime::decode_words(text);

    mime::RenderPlan plan{std::string(text)};
    (void)plan.template_text();
    for (bool utf8 : {false, true}) {
        std::string out = mime::render_message(plan, {"a", "b"}, {v1, v2}, v2, utf8);
        // No value adds a field; a plain message may get its three MIME fields (replacing any it had).
        auto in = fields(text), got = fields(out);
        if (header_section_size(text) == std::string_view::npos || !in) continue;
        if (!got || got->first != in->first || got->second > in->second + 3) __builtin_trap();
    }
    return 0;
}
