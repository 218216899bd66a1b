// address: mailbox parsing and domain extraction for envelope addresses.
#include "libshared/address.hpp"

#include <cctype>

#include "libshared/text.hpp"

namespace mxlane {

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string strip_brackets(std::string_view text) {
    text = trim(text);
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>') {
        text.remove_prefix(1);
        text.remove_suffix(1);
    }
    return std::string(text);
}

std::string domain_of(std::string_view address) {
    auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

std::string local_part_of(std::string_view address) {
    auto at = address.rfind('@');
    return std::string(at == std::string_view::npos ? address : address.substr(0, at));
}

static bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > 255) return false;
    if (d.front() == '[') return d.back() == ']' && d.size() > 2;
    std::size_t label = 0;
    for (char c : d) {
        auto u = static_cast<unsigned char>(c);
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!(std::isalnum(u) || c == '-' || c == '_' || u >= 0x80)) return false;
        if (++label > 63) return false;
    }
    return label > 0;
}

bool valid_address(std::string_view address) {
    if (address.empty() || address.size() > 320) return false;
    for (char c : address) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',') return false;
    }
    auto at = address.rfind('@');
    if (at == std::string_view::npos || at == 0 || at > 64) return false;
    return valid_domain(address.substr(at + 1));
}

bool address_matches(std::string_view address, std::string_view pattern) {
    std::string addr = to_lower(address);
    std::string pat = to_lower(pattern);
    if (pat.empty()) return false;
    if (pat.front() == '@') return domain_of(addr) == pat.substr(1);
    if (pat.find('@') != std::string::npos) return addr == pat;
    std::string dom = domain_of(addr);
    return dom == pat || (dom.size() > pat.size() && dom.ends_with("." + pat));
}

}  // namespace mxlane
