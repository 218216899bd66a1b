// codec: byte encoding of store keys (big-endian, so B-tree order is numeric order) and records.
#include "libshared/store/codec.hpp"

namespace mxlane::store {

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

std::uint64_t get_u64(std::string_view in, std::size_t at) {
    if (in.size() < at + 8) throw CodecError("short key or record");
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
    return v;
}

Encoder& Encoder::str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
    return *this;
}

Encoder& Encoder::strs(const std::vector<std::string>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) str(s);
    return *this;
}

void Decoder::need(std::size_t n) const {
    if (in_.size() - pos_ < n) throw CodecError("truncated store record");
}

std::uint8_t Decoder::u8() {
    need(1);
    return static_cast<std::uint8_t>(in_[pos_++]);
}

std::uint32_t Decoder::u32() {
    need(4);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_++]);
    return v;
}

std::uint64_t Decoder::u64() {
    need(8);
    std::uint64_t v = get_u64(in_, pos_);
    pos_ += 8;
    return v;
}

std::string Decoder::str() {
    std::uint32_t n = u32();
    need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
}

std::vector<std::string> Decoder::strs() {
    std::uint32_t n = u32();
    if (n > in_.size()) throw CodecError("bad list length in store record");
    std::vector<std::string> v;
    v.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) v.push_back(str());
    return v;
}

}  // namespace mxlane::store
