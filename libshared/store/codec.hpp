// codec: byte encoding of store keys (big-endian, so B-tree order is numeric order) and records.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::store {

// A record that cannot be decoded: the store is damaged or from a newer version.
class CodecError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

void put_u64(std::string& out, std::uint64_t v);
void put_u32(std::string& out, std::uint32_t v);
std::uint64_t get_u64(std::string_view in, std::size_t at);

// Length-prefixed fields, appended in order and read back in the same order.
class Encoder {
public:
    Encoder& u8(std::uint8_t v) { out_ += static_cast<char>(v); return *this; }
    Encoder& u32(std::uint32_t v) { put_u32(out_, v); return *this; }
    Encoder& u64(std::uint64_t v) { put_u64(out_, v); return *this; }
    Encoder& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
    Encoder& str(std::string_view s);
    Encoder& strs(const std::vector<std::string>& v);
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class Decoder {
public:
    explicit Decoder(std::string_view in) : in_(in) {}
    std::uint8_t u8();
    std::uint32_t u32();
    std::uint64_t u64();
    std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
    std::string str();
    std::vector<std::string> strs();
    bool done() const { return pos_ == in_.size(); }

private:
    void need(std::size_t n) const;
    std::string_view in_;
    std::size_t pos_ = 0;
};

}  // namespace mxlane::store
