// recipient_token: the short signed token that names one recipient of one job (VERP, List-Unsubscribe).
#include "libshared/recipient_token.hpp"

#include <openssl/crypto.h>
#include <strings.h>

#include "libshared/loop_token.hpp"
#include "libshared/text.hpp"

namespace mxlane {
namespace {

constexpr std::string_view kPurpose = "mxlane recipient token v1";
constexpr std::size_t kMacBytes = 10;
constexpr std::size_t kMaxVarint = 10;  // bytes of a LEB128 uint64
constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

// Reads one canonical varint from the front of `in`: the shortest encoding only,
// so that one recipient has one token.
std::optional<std::uint64_t> take_varint(std::string_view& in) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < in.size() && i < kMaxVarint; ++i) {
        auto b = static_cast<unsigned char>(in[i]);
        if (i == kMaxVarint - 1 && b > 1) return std::nullopt;  // beyond 64 bits
        v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0) return std::nullopt;  // a padded encoding
            in.remove_prefix(i + 1);
            return v;
        }
    }
    return std::nullopt;
}

std::string base32_lower(std::string_view bytes) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (unsigned char c : bytes) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 5) {
            out += kAlphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
    return out;
}

// The bytes of unpadded base32 in any case; nullopt for a character outside the
// alphabet, an impossible length or non-zero bits after the last byte (each
// byte string has exactly one spelling up to case).
std::optional<std::string> base32_decode(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char ch : text) {
        unsigned v;
        if (ch >= 'a' && ch <= 'z') v = static_cast<unsigned>(ch - 'a');
        else if (ch >= 'A' && ch <= 'Z') v = static_cast<unsigned>(ch - 'A');
        else if (ch >= '2' && ch <= '7') v = static_cast<unsigned>(ch - '2') + 26;
        else return std::nullopt;
        buffer = ((buffer << 5) | v) & 0xfff;
        bits += 5;
        if (bits >= 8) {
            out += static_cast<char>((buffer >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::string mac_of(const std::string& queue_directory, std::string_view ids) {
    std::string text(kPurpose);
    text += ids;
    return hmac_sha256(loop_key(queue_directory), text).substr(0, kMacBytes);
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string recipient_token_make(const std::string& queue_directory, RecipientRef ref) {
    std::string ids;
    put_varint(ids, ref.job_id);
    put_varint(ids, ref.seq);
    return base32_lower(ids + mac_of(queue_directory, ids));
}

std::optional<RecipientRef> recipient_token_check(const std::string& queue_directory, std::string_view token) {
    // Two one-byte varints and the MAC at the least, two ten-byte ones at the most.
    auto chars = [](std::size_t bytes) { return (bytes * 8 + 4) / 5; };
    if (token.size() < chars(2 + kMacBytes) || token.size() > chars(2 * kMaxVarint + kMacBytes)) return std::nullopt;
    auto bytes = base32_decode(token);
    if (!bytes) return std::nullopt;
    std::string_view rest = *bytes;
    RecipientRef ref;
    auto job = take_varint(rest);
    if (!job) return std::nullopt;
    auto seq = take_varint(rest);
    if (!seq || rest.size() != kMacBytes) return std::nullopt;
    ref.job_id = *job;
    ref.seq = *seq;
    const std::string_view ids = std::string_view(*bytes).substr(0, bytes->size() - kMacBytes);
    const std::string want = mac_of(queue_directory, ids);
    if (CRYPTO_memcmp(want.data(), rest.data(), kMacBytes) != 0) return std::nullopt;
    return ref;
}

std::string tagged_address(const std::string& base, const std::string& delimiter, const std::string& token) {
    const auto at = base.rfind('@');
    if (at == std::string::npos) return base + delimiter + token;
    return base.substr(0, at) + delimiter + token + base.substr(at);
}

std::string token_of(const std::string& address, const std::string& base, const std::string& delimiter) {
    std::string_view a = trim(address);
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    const auto at = a.rfind('@');
    const auto base_at = base.rfind('@');
    if (at == std::string_view::npos || base_at == std::string::npos || delimiter.empty()) return "";
    const std::string_view local = a.substr(0, at);
    const std::string_view base_local = std::string_view(base).substr(0, base_at);
    if (!iequal(a.substr(at), std::string_view(base).substr(base_at))) return "";
    if (local.size() <= base_local.size() + delimiter.size() || !iequal(local.substr(0, base_local.size()), base_local) ||
        local.substr(base_local.size(), delimiter.size()) != delimiter)
        return "";
    return std::string(local.substr(base_local.size() + delimiter.size()));
}

}  // namespace mxlane
