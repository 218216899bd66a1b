// source_pools: the sending addresses, each in a named pool with its own EHLO name (the source_pools file).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

struct SourceAddress {
    std::string pool;
    std::string address;  // canonical text form (inet_ntop), IPv4 or IPv6
    std::string helo;     // EHLO name sent on connections from this address
};

struct SourcePools {
    std::vector<SourceAddress> addresses;  // file order
    // The pool's addresses in file order; empty: no such pool.
    std::vector<const SourceAddress*> pool(std::string_view name) const;
    // The address entry, or nullptr.
    const SourceAddress* find(std::string_view address) const;
    // Pool names in order of first appearance.
    std::vector<std::string> pool_names() const;
};

// Reads a source_pools file (lines `POOL ADDRESS HELO_NAME`, # comments, IPv4 or IPv6);
// throws std::runtime_error("FILE:LINE: problem") on a malformed line or duplicate address.
SourcePools load_source_pools(const std::string& path);
// The same for text already read; `file` names it in errors.
SourcePools parse_source_pools(const std::string& text, const std::string& file);

}  // namespace mxlane
