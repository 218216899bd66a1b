// downgrade: 8-bit message -> 7-bit, for a server that does not announce 8BITMIME (RFC 6152 3).
#pragma once
#include <string>
#include <string_view>

namespace mxlane::smtp {

// Takes a message in wire form (CRLF lines, dot-stuffed, as to_wire makes it)
// and returns it in wire form with every 8-bit body part re-encoded as
// quoted-printable (RFC 2045 6.7), its Content-Transfer-Encoding set to match:
//   - a leaf part (or a message without MIME-Version) whose body has a byte
//     >= 0x80 and whose encoding is 7bit, 8bit, binary or absent;
//   - multipart bodies part by part, message/rfc822 parts recursively (their
//     8bit/binary encoding becomes 7bit);
//   - base64 and quoted-printable parts, and parts without 8-bit bytes, stay
//     as they are; so do header fields (8-bit there has no safe 7-bit form,
//     and is sent as received).
// A message without MIME-Version that needs encoding gets "MIME-Version: 1.0"
// (one with a Content-Type is read as MIME all the same) and, without a
// Content-Type, "text/plain; charset=unknown-8bit" (RFC 1428).
std::string downgrade_to_7bit(std::string_view wire);

// RFC 2045 6.7 quoted-printable of one body (CRLF lines stay hard line
// breaks; output lines are at most 76 characters): mime::qp_encode. Not dot-stuffed.
std::string quoted_printable(std::string_view body);

}  // namespace mxlane::smtp
