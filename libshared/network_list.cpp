// network_list: address lists as Postfix writes them (127.0.0.0/8, [::1]/128, 192.0.2.7) and membership tests.
#include "libshared/network_list.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "libshared/params.hpp"

namespace mxlane {
namespace {

using Bytes = std::array<std::uint8_t, 16>;

Bytes mapped(const in_addr& a4) {
    Bytes b{};
    b[10] = b[11] = 0xff;
    std::memcpy(b.data() + 12, &a4, 4);
    return b;
}

// "1.2.3.4" or "::1" (brackets already removed) -> bytes; is_v4 says which.
bool to_bytes(const std::string& text, Bytes& out, bool& is_v4) {
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        out = mapped(a4);
        is_v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
        std::memcpy(out.data(), &a6, 16);
        is_v4 = false;
        return true;
    }
    return false;
}

}  // namespace

NetworkList NetworkList::parse(std::string_view text) {
    NetworkList list;
    for (const auto& item : split_list(text)) {
        std::string addr = item, len;
        if (auto slash = addr.find('/'); slash != std::string::npos) {
            len = addr.substr(slash + 1);
            addr.resize(slash);
        }
        if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
        Net n;
        bool v4 = false;
        if (!to_bytes(addr, n.addr, v4)) throw std::invalid_argument("not an address or network: " + item);
        const int bits = v4 ? 32 : 128;
        std::int64_t prefix = bits;
        if (!len.empty() && (!parse_integer(len, prefix) || prefix < 0 || prefix > bits))
            throw std::invalid_argument("bad prefix length in " + item);
        n.prefix = static_cast<int>(prefix) + (v4 ? 96 : 0);
        list.nets_.push_back(n);
    }
    return list;
}

bool NetworkList::contains(const Bytes& a) const {
    for (const auto& n : nets_) {
        int full = n.prefix / 8, rest = n.prefix % 8;
        if (std::memcmp(a.data(), n.addr.data(), static_cast<std::size_t>(full)) != 0) continue;
        if (rest) {
            const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
            if ((a[static_cast<std::size_t>(full)] & mask) != (n.addr[static_cast<std::size_t>(full)] & mask)) continue;
        }
        return true;
    }
    return false;
}

bool NetworkList::contains(std::string_view address) const {
    std::string text(address);
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    Bytes b;
    bool v4;
    return to_bytes(text, b, v4) && contains(b);
}

bool NetworkList::contains(const sockaddr* sa) const {
    if (!sa) return false;
    if (sa->sa_family == AF_INET) return contains(mapped(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr));
    if (sa->sa_family == AF_INET6) {
        Bytes b;
        std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
        return contains(b);
    }
    return false;
}

}  // namespace mxlane
