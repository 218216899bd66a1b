// network_list: address lists as Postfix writes them (127.0.0.0/8, [::1]/128, 192.0.2.7) and membership tests.
#pragma once
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

class NetworkList {
public:
    // Comma or white-space separated items: an address or address/prefix;
    // IPv6 may be bracketed ("[::1]/128"). Throws std::invalid_argument naming
    // the first bad item.
    static NetworkList parse(std::string_view text);

    // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) counts as the IPv4 one.
    bool contains(std::string_view address) const;  // textual; false when it is no address
    bool contains(const sockaddr* sa) const;        // AF_INET / AF_INET6; false for others
    bool empty() const { return nets_.empty(); }

private:
    struct Net {
        std::array<std::uint8_t, 16> addr{};  // IPv4 as ::ffff:a.b.c.d
        int prefix = 128;                     // over the 128 bits
    };
    bool contains(const std::array<std::uint8_t, 16>& a) const;
    std::vector<Net> nets_;
};

}  // namespace mxlane
