// mailbox_list: RFC 5322 address lists (From:, To:...) parsed into their mailboxes.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::ctl {

struct Mailbox {
    std::string display_name;  // the phrase before <...>, unquoted; "" when there is none
    std::string address;       // local@domain; a local part that needs quotes keeps them
};

// A header value that is not an address list; what() says where and why.
class AddressSyntaxError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Every mailbox of an address-list (RFC 5322 3.4), in order, the members of groups
// ("Team: a@x, b@y;") included. Comments "(...)" (nested, with quoted pairs) are
// white space and never an address; quoted strings may hold any of ",<>@:;()";
// a display name may be a phrase of atoms and quoted strings (and the obsolete
// dots of RFC 5322 4.1). UTF-8 is allowed in atoms (RFC 6532).
std::vector<Mailbox> parse_address_list(std::string_view value);

}  // namespace mxlane::ctl
