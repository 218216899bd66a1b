// text: small string helpers that every part needs (trimming).
#include "libshared/text.hpp"

namespace mxlane {

std::string_view trim(std::string_view text, std::string_view chars) {
    auto begin = text.find_first_not_of(chars);
    if (begin == std::string_view::npos) return {};
    return text.substr(begin, text.find_last_not_of(chars) - begin + 1);
}

}  // namespace mxlane
