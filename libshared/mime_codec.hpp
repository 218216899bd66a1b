// mime_codec: MIME transfer encodings (RFC 2045 quoted-printable, base64), Content-Type parameters, RFC 2047 encoded-words, charsets.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::mime {

// Quoted-printable (RFC 2045 6.7) of a text whose line breaks are CRLF: each
// CRLF stays a hard line break; output lines are at most 76 characters (soft
// breaks "=" where needed); "=", control bytes, bytes >= 0x80 and a blank at
// the end of a line are encoded. A line never starts with "-" (a value such
// as "--boundary" cannot end a MIME part), nor with "." or "From ". No final CRLF.
std::string qp_encode(std::string_view text);

// Quoted-printable -> bytes: "=XX" escapes, soft breaks (with any blanks
// before the line end) removed, blanks at the end of a line removed; a
// malformed "=" is kept as it is. Lines end in CRLF or LF; the output's in CRLF.
std::string qp_decode(std::string_view encoded);

// Base64 (RFC 2045 6.8) in lines of 76 characters, CRLF between them, none at the end.
std::string base64_encode(std::string_view bytes);

// Base64 -> bytes; characters outside the alphabet (line ends) are skipped,
// decoding stops at "=" padding.
std::string base64_decode(std::string_view encoded);

// RFC 2047 encoded-words for a UTF-8 text, each at most 75 characters, a
// multi-byte character never split between two; Q unless it would be a
// third longer than B. B words but the last hold a multiple of 3 bytes (no
// "=" padding: GMime and others join adjacent words before decoding); a text
// that cannot be cut so is written in Q. The words are meant to be joined by one space (a space
// between encoded-words is not part of the text). Q words use only the
// characters allowed in a phrase (RFC 2047 5 (3)), so they fit any field.
std::vector<std::string> encode_words(std::string_view utf8);

// A header field value with its RFC 2047 encoded-words decoded to UTF-8
// (white space between two encoded-words dropped); a word in a charset that
// cannot be converted is left as it is.
std::string decode_words(std::string_view value);

// "Text/HTML; charset=x" -> "text/html": a Content-Type value's media type, lower case.
std::string media_type(std::string_view value);

// A parameter of a Content-Type value (RFC 2045 5.1), quotes and backslash
// escapes undone; `name` in lower case; "" when absent.
std::string content_type_param(std::string_view value, std::string_view name);

// True when the value looks like it holds an encoded-word ("=?").
bool has_encoded_word_marker(std::string_view value);

// `text` converted from charset `from` to charset `to` (iconv names); nullopt
// when some character has no form in `to` or the input is not valid `from`.
std::optional<std::string> convert_charset(std::string_view text, const std::string& from, const std::string& to);

// Is the charset name UTF-8 (or its subset US-ASCII, given as "us-ascii" or "ascii")?
bool is_utf8_charset(std::string_view charset);
bool is_ascii_charset(std::string_view charset);

// Any byte >= 0x80?
bool has_non_ascii(std::string_view text);

// A header field "Name: value" as lines of at most 78 characters where the
// tokens allow: tokens are joined by one space, a line is folded (CRLF and the
// space) before a token that would not fit. Ends in CRLF.
std::string fold_field(std::string_view name, const std::vector<std::string>& tokens);

}  // namespace mxlane::mime
