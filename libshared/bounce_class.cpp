// bounce_class: what kind of failure a reply is (invalid recipient, full mailbox, rate limit, ...).
#include "libshared/bounce_class.hpp"

#include <array>
#include <string>

#include "libshared/address.hpp"

namespace mxlane {

namespace {

using C = BounceClass;

// Phrases the big receivers put in their replies (lower case), in the order
// they are tried: the specific before the general. The codes these replies
// carry are often generic (550 5.5.0, 421 4.7.0, 554 5.7.1), so the words
// decide before the enhanced code does. Each phrase is written after the
// providers' public documentation of their replies.
struct Phrase {
    std::string_view words;
    BounceClass cls;
};

constexpr std::array kPhrases{
    // sender authentication: Gmail 5.7.26/4.7.27-4.7.32, Microsoft 5.7.515, Yahoo, RFC 7372 wording
    Phrase{"dmarc", C::auth},
    Phrase{"spf", C::auth},
    Phrase{"dkim", C::auth},
    Phrase{"unauthenticated", C::auth},
    Phrase{"not authenticated", C::auth},
    Phrase{"authentication level", C::auth},
    Phrase{"sender authentication", C::auth},
    Phrase{"ptr record", C::auth},
    Phrase{"dns ptr", C::auth},
    Phrase{"reverse dns", C::auth},
    Phrase{"reverse-dns", C::auth},
    Phrase{"rdns", C::auth},
    // rate: Gmail 4.7.28 / 4.2.1 "receiving mail at a rate", Microsoft 4.7.650, Yahoo [TSS04]/[TSS05]
    Phrase{"rate limit", C::rate_limit},
    Phrase{"rate-limit", C::rate_limit},
    Phrase{"ratelimit", C::rate_limit},
    Phrase{"receiving mail at a rate", C::rate_limit},
    Phrase{"unusual rate", C::rate_limit},
    Phrase{"[tss04]", C::rate_limit},
    Phrase{"[tss05]", C::rate_limit},
    Phrase{"[ts04]", C::rate_limit},
    Phrase{"unexpected volume", C::rate_limit},
    Phrase{"too many connections", C::rate_limit},
    Phrase{"too many concurrent", C::rate_limit},
    Phrase{"too many messages", C::rate_limit},
    Phrase{"too many recipients this", C::rate_limit},
    Phrase{"too much mail", C::rate_limit},
    Phrase{"throttl", C::rate_limit},
    Phrase{"greylist", C::rate_limit},
    Phrase{"graylist", C::rate_limit},
    // full mailboxes
    Phrase{"over quota", C::mailbox_full},
    Phrase{"overquota", C::mailbox_full},
    Phrase{"quota exceeded", C::mailbox_full},
    Phrase{"exceeded storage", C::mailbox_full},
    Phrase{"mailbox is full", C::mailbox_full},
    Phrase{"mailbox full", C::mailbox_full},
    Phrase{"inbox is full", C::mailbox_full},
    Phrase{"out of storage", C::mailbox_full},
    Phrase{"insufficient storage", C::mailbox_full},
    // dead addresses: Gmail 5.1.1 / 5.2.1 disabled, Microsoft 5.5.0 / 5.4.1, Yahoo "dd This user doesn't have"
    Phrase{"does not exist", C::invalid_recipient},
    Phrase{"doesn't exist", C::invalid_recipient},
    Phrase{"doesn't have a", C::invalid_recipient},
    Phrase{"no such user", C::invalid_recipient},
    Phrase{"no such mailbox", C::invalid_recipient},
    Phrase{"no such recipient", C::invalid_recipient},
    Phrase{"user unknown", C::invalid_recipient},
    Phrase{"unknown user", C::invalid_recipient},
    Phrase{"unknown recipient", C::invalid_recipient},
    Phrase{"recipient unknown", C::invalid_recipient},
    Phrase{"invalid recipient", C::invalid_recipient},
    Phrase{"recipient not found", C::invalid_recipient},
    Phrase{"user not found", C::invalid_recipient},
    Phrase{"address rejected: access denied", C::invalid_recipient},
    Phrase{"mailbox unavailable", C::invalid_recipient},
    Phrase{"mailbox not found", C::invalid_recipient},
    Phrase{"account disabled", C::invalid_recipient},
    Phrase{"mailbox is disabled", C::invalid_recipient},
    Phrase{"mailbox disabled", C::invalid_recipient},
    Phrase{"account has been disabled", C::invalid_recipient},
    Phrase{"account is disabled", C::invalid_recipient},
    Phrase{"inactive account", C::invalid_recipient},
    Phrase{"address not found", C::invalid_recipient},
    // domains
    Phrase{"domain not found", C::bad_domain},
    Phrase{"host or domain name not found", C::bad_domain},
    Phrase{"null mx", C::bad_domain},
    Phrase{"does not accept mail", C::bad_domain},
    Phrase{"loops back to myself", C::network},
    // content
    Phrase{"virus", C::content},
    Phrase{"malware", C::content},
    Phrase{"attachment", C::content},
    Phrase{"message too large", C::content},
    Phrase{"message size", C::content},
    Phrase{"content rejected", C::content},
    Phrase{"message content", C::content},
    // policy: spam, reputation, blocklists, refused clients
    Phrase{"spamhaus", C::policy},
    Phrase{"blocklist", C::policy},
    Phrase{"blacklist", C::policy},
    Phrase{"block list", C::policy},
    Phrase{"listed", C::policy},
    Phrase{"reputation", C::policy},
    Phrase{"spam", C::policy},
    Phrase{"unsolicited", C::policy},
    Phrase{"banned", C::policy},
    Phrase{"refused to talk", C::policy},
    Phrase{"access denied", C::policy},
    Phrase{"not allowed", C::policy},
    Phrase{"relay access denied", C::policy},
    Phrase{"relaying denied", C::policy},
    // network: what mxlane says itself of connections
    Phrase{"connection refused", C::network},
    Phrase{"connection timed out", C::network},
    Phrase{"timed out", C::network},
    Phrase{"lost connection", C::network},
    Phrase{"no route to host", C::network},
    Phrase{"network is unreachable", C::network},
};

// RFC 3463 and its registry (RFC 5248), with RFC 7372 and RFC 7505, by
// subject and detail.
BounceClass by_enhanced(std::string_view e) {
    auto dot = e.find('.');
    if (dot == std::string_view::npos || dot + 1 >= e.size()) return C::none;
    std::string_view rest = e.substr(dot + 1);  // "1.1"
    auto dot2 = rest.find('.');
    if (dot2 == std::string_view::npos) return C::none;
    std::string_view subject = rest.substr(0, dot2), detail = rest.substr(dot2 + 1);
    if (subject == "1") {
        if (detail == "2" || detail == "10") return C::bad_domain;  // bad destination system; null MX
        if (detail == "7" || detail == "8") return C::policy;       // the sender's address
        return C::invalid_recipient;                                // 1.0, 1.1, 1.3, 1.6 ...
    }
    if (subject == "2") {
        if (detail == "2") return C::mailbox_full;
        if (detail == "3") return C::content;  // message too long for the mailbox
        if (detail == "1") return C::invalid_recipient;  // mailbox disabled
        return C::other;
    }
    if (subject == "3") return detail == "4" ? C::content : C::other;
    if (subject == "4") {
        if (detail == "4") return C::bad_domain;  // unable to route
        return C::network;
    }
    if (subject == "5") return C::protocol;
    if (subject == "6") return detail == "7" ? C::protocol : C::content;
    if (subject == "7") {
        int d = 0;
        for (char c : detail) {
            if (c < '0' || c > '9') return C::policy;
            d = d * 10 + (c - '0');
        }
        if (d == 28) return C::rate_limit;        // Gmail: rate limited for suspected spam
        if (d == 29) return C::policy;            // Gmail: TLS required
        if (d >= 20 && d <= 32) return C::auth;   // RFC 7372 (DKIM, SPF, reverse DNS, DMARC), Gmail's 27, 30-32
        if (d == 515) return C::auth;              // Microsoft: authentication level
        if (d == 650 || d == 651) return C::rate_limit;  // Microsoft: rate limited for reputation
        return C::policy;
    }
    return C::other;
}

}  // namespace

std::string_view class_name(BounceClass c) {
    switch (c) {
    case C::none: return "";
    case C::invalid_recipient: return "invalid-recipient";
    case C::bad_domain: return "bad-domain";
    case C::mailbox_full: return "mailbox-full";
    case C::content: return "content";
    case C::policy: return "policy";
    case C::auth: return "auth";
    case C::rate_limit: return "rate-limit";
    case C::network: return "network";
    case C::protocol: return "protocol";
    case C::other: return "other";
    }
    return "other";
}

BounceClass classify_reply(int code, std::string_view enhanced, std::string_view text) {
    if (code >= 200 && code < 400) return C::none;
    if (code == 0 && enhanced.empty() && text.empty()) return C::none;
    // Codes first where they cannot be misread: RFC 7372 authentication, Microsoft's
    // rate limits, a permanently unknown domain.
    BounceClass by_code = by_enhanced(enhanced);
    // (X.1.10 is a null MX in RFC 7505 but "recipient not found" at Microsoft: the words decide.)
    const bool null_mx_code = enhanced.ends_with(".1.10");
    if (by_code == C::auth || by_code == C::rate_limit || (by_code == C::bad_domain && code >= 500 && !null_mx_code))
        return by_code;
    const std::string lower = to_lower(text);
    for (const auto& p : kPhrases)
        if (lower.find(p.words) != std::string::npos) return p.cls;
    if (by_code != C::none) return by_code;
    // No enhanced code and no known words: the basic code (RFC 5321 4.2).
    switch (code) {
    case 421: return C::network;
    case 552: return C::mailbox_full;  // "exceeded storage allocation"
    case 500: case 501: case 502: case 503: case 504: return C::protocol;
    default: return C::other;
    }
}

}  // namespace mxlane
