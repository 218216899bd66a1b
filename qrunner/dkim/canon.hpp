// canon: DKIM relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) and the choice of signed header fields (5.4).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::dkim {

// A message as DKIM sees it: its header fields as written (a folded field
// keeps its inner CRLFs, no CRLF at its end) and its body (CRLF lines).
struct MessageParts {
    std::vector<std::string> fields;
    std::string body;
};

// Splits wire text (CRLF lines, dot-stuffed as to_wire makes it) at the empty
// line, undoing the dot-stuffing of RFC 5321 4.5.2: DKIM signs the message,
// not its transport form.
MessageParts split_wire(std::string_view wire);

// Relaxed header canonicalisation (3.4.2) of one field: name lower-cased, the
// line breaks of folding removed, runs of WSP one space, none around the
// value or before the colon (nor VT or FF at the value's ends, as receivers
// do it); ends in CRLF.
std::string relaxed_header(std::string_view field);

// Relaxed body canonicalisation (3.4.4): runs of WSP in a line one space, WSP
// at line ends removed, empty lines at the end removed, a body that is not
// empty ends in CRLF (a last line without one gets it); an empty body stays
// empty.
std::string relaxed_body(std::string_view body);

// The name of a field ("" when it has no colon), without WSP before the colon.
std::string_view field_name(std::string_view field);

// h= for these fields: every field whose name is in `names` (case-insensitive),
// in message order, and `oversign` names once more than they occur, so that
// no further instance can be added without breaking the signature (8.15).
std::vector<std::string> header_list(const std::vector<std::string>& fields, const std::vector<std::string>& names,
                                     const std::vector<std::string>& oversign);

// The canonicalised fields h= signs, in h= order: each name takes the last
// instance not yet taken, from the bottom up (5.4.2); a name with no instance
// left contributes nothing (which is what makes over-signing work).
std::string signed_header_data(const std::vector<std::string>& fields, const std::vector<std::string>& h);

}  // namespace mxlane::dkim
