// bounce_class: what kind of failure a reply is (invalid recipient, full mailbox, rate limit, ...).
#pragma once
#include <string_view>

namespace mxlane {

// The classes of a failed attempt, as recipients --json, export, the sender's
// report and the log name them. Only invalid_recipient and bad_domain say
// that the address itself is dead (and put it on the suppression list); auth
// says the sender's own setup (SPF, DKIM, DMARC, reverse DNS) is wrong.
enum class BounceClass {
    none,               // not a failure (2xx, or no reply yet)
    invalid_recipient,  // no such mailbox, disabled account, bad address syntax
    bad_domain,         // no such domain, null MX, no mail host
    mailbox_full,       // over quota
    content,            // the message itself: virus, attachment, size, media
    policy,             // spam, reputation, blocklists, the client refused
    auth,               // SPF/DKIM/DMARC or reverse DNS of the sender failed
    rate_limit,         // too fast, too much, try later (greylisting included)
    network,            // connect, lost connection, timeout, DNS, routing
    protocol,           // the dialogue went wrong (syntax, out-of-turn replies)
    other,
};

// "invalid-recipient", "bad-domain", ...; "" for none.
std::string_view class_name(BounceClass c);

// The class of a reply: `code` (250, 550, ...), `enhanced` (RFC 3463 "5.1.1",
// may be empty) and the reply's text (the whole reply line is fine). The big
// providers' known phrases decide first (their codes are often generic: a
// "550 5.5.0" that says "mailbox unavailable" is an invalid recipient), then
// the enhanced code, then the basic code. Replies mxlane makes up itself
// (connect failures 4.4.1, DNS 4.4.3 / 5.4.4, protocol errors 4.5.0) are
// classed by the same rules.
BounceClass classify_reply(int code, std::string_view enhanced, std::string_view text);

}  // namespace mxlane
