// printable: text from outside (job names, SMTP replies, header fields) made safe for JSON, logs and terminals.
#pragma once
#include <string>
#include <string_view>

namespace mxlane {

// The text as valid UTF-8: each ill-formed sequence (a stray byte, a truncated or
// overlong sequence, a surrogate, a code point above U+10FFFF) becomes one U+FFFD
// per maximal subpart, as Unicode 15 section 3.9 recommends (Python's "replace"
// decoder does the same). Valid text is returned unchanged. For JSON documents.
std::string valid_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);

// The text with nothing a log reader or a terminal would act on, like Postfix's
// printable(): printable ASCII and printable UTF-8 stay; every control character
// (C0 including TAB, CR, LF and ESC; DEL; C1), every bidirectional override or
// isolate, the line and paragraph separators and every ill-formed sequence become
// `replacement`, one per character or per maximal ill-formed subpart.
std::string printable(std::string_view text, char replacement = '?');

}  // namespace mxlane
