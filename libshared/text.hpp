// text: small string helpers that every part needs (trimming, base64).
#pragma once
#include <string>
#include <string_view>

namespace mxlane {

// Blanks, tabs and line ends: what trim() takes off by default.
inline constexpr std::string_view blank_chars = " \t\r\n";
// RFC 5322 3.2.2 WSP (space and horizontal tab): white space inside a header field.
inline constexpr std::string_view wsp_chars = " \t";

// `text` without any of `chars` at either end. A view into `text`: keep what
// it views alive (trim(line.substr(...)) is safe only within one expression).
std::string_view trim(std::string_view text, std::string_view chars = blank_chars);

// RFC 4648 base64, one line, with padding (SMTP AUTH, DKIM's p=, bh= and b=).
std::string base64(std::string_view bytes);

}  // namespace mxlane
