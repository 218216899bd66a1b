// source_pools: parses the file of sending addresses (POOL ADDRESS HELO_NAME) and answers by pool.
#include "libshared/source_pools.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "libshared/address.hpp"
#include "libshared/text.hpp"

namespace mxlane {
namespace {

// The canonical text of an IPv4 or IPv6 address (so "::0001" and "::1" are one address), or "".
std::string canonical_address(const std::string& text) {
    unsigned char buf[sizeof(in6_addr)];
    char out[INET6_ADDRSTRLEN];
    for (int family : {AF_INET, AF_INET6})
        if (inet_pton(family, text.c_str(), buf) == 1 && inet_ntop(family, buf, out, sizeof out))
            return out;
    return "";
}

// A pool name: letters, digits, '-', '_', '.'; it travels in a header and on command lines.
bool good_pool_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
}

// A host name for EHLO: labels of letters, digits and hyphens (RFC 5321 Domain).
bool good_helo(std::string_view name) {
    if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
            if (++label > 63) return false;
        } else {
            return false;
        }
    }
    return true;
}

std::string where(const std::string& file, int line) { return file + ":" + std::to_string(line) + ": "; }

}  // namespace

std::vector<const SourceAddress*> SourcePools::pool(std::string_view name) const {
    std::vector<const SourceAddress*> out;
    for (const auto& a : addresses)
        if (a.pool == name) out.push_back(&a);
    return out;
}

const SourceAddress* SourcePools::find(std::string_view address) const {
    for (const auto& a : addresses)
        if (a.address == address) return &a;
    return nullptr;
}

std::vector<std::string> SourcePools::pool_names() const {
    std::vector<std::string> names;
    for (const auto& a : addresses)
        if (std::find(names.begin(), names.end(), a.pool) == names.end()) names.push_back(a.pool);
    return names;
}

SourcePools parse_source_pools(const std::string& text, const std::string& file) {
    SourcePools pools;
    std::istringstream in(text);
    std::string raw;
    for (int line = 1; std::getline(in, raw); ++line) {
        std::string_view content = trim(std::string_view(raw).substr(0, raw.find('#')));
        if (content.empty()) continue;
        std::istringstream words{std::string(content)};
        std::string pool, address, helo, extra;
        words >> pool >> address >> helo >> extra;
        if (helo.empty() || !extra.empty())
            throw std::runtime_error(where(file, line) + "expected POOL ADDRESS HELO_NAME: " + std::string(content));
        if (!good_pool_name(pool))
            throw std::runtime_error(where(file, line) + "bad pool name (letters, digits, - _ .): " + pool);
        std::string canonical = canonical_address(address);
        if (canonical.empty())
            throw std::runtime_error(where(file, line) + "not an IPv4 or IPv6 address: " + address);
        if (!good_helo(helo))
            throw std::runtime_error(where(file, line) + "bad HELO name: " + helo);
        if (const auto* dup = pools.find(canonical))
            throw std::runtime_error(where(file, line) + "duplicate address " + canonical + " (already in pool " +
                                     dup->pool + ")");
        pools.addresses.push_back({pool, canonical, to_lower(helo)});
    }
    return pools;
}

SourcePools load_source_pools(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return parse_source_pools(text.str(), path);
}

}  // namespace mxlane
