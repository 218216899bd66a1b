// signer: a message's final wire text -> the same text with DKIM-Signature fields in front (RFC 6376, RFC 8463).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qrunner/dkim/key_table.hpp"

namespace mxlane::dkim {

// OpenSSL failed to sign (out of memory, say): the message is deferred,
// never sent with a broken signature.
class SignError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What sign() made of one message.
struct Signed {
    std::string text;               // DKIM-Signature fields, then the message as given
    std::string from_domain;        // the From: header's domain ("" when it has none that parses)
    std::string signing_domain;     // the d= of the signatures ("" when unsigned)
    std::vector<const Key*> keys;   // one per signature, in table order; empty: unsigned
    bool is_signed() const { return !keys.empty(); }
    // "d=shop.test s=rsa1 a=rsa-sha256, d=shop.test s=ed1 a=ed25519-sha256"
    std::string summary() const;
};

// Header names of dkim_signed_headers: "From" first and once, the others in
// the order given, duplicates (ignoring case) dropped.
std::vector<std::string> signed_header_names(const std::vector<std::string>& configured);

// The From: header's domain in a message, CRLF or LF lines ("" when none parses).
std::string from_domain(std::string_view text);

// One DKIM-Signature field (with its CRLF) for a message already split by
// split_wire, signed with `key` at `time` (unix seconds: t=).
std::string signature_field(const Key& key, const std::vector<std::string>& fields, std::string_view body,
                            const std::vector<std::string>& names, std::int64_t time);

// Signs with every key the From: domain (or its nearest parent) has, with
// relaxed/relaxed canonicalisation (RFC 6376 3.4). From is signed one time
// more than it occurs, so that no From: can be added (RFC 6376 8.15).
// Thread-safe: one Signer serves every thread; it is replaced whole on SIGHUP.
class Signer {
public:
    Signer(KeyTable keys, const std::vector<std::string>& signed_headers);

    // `wire` is a message in wire form (CRLF lines, dot-stuffed, as to_wire
    // makes it); what is signed is the message itself (RFC 5321 4.5.2 undone).
    // Without a key for the From: domain the text is returned unchanged
    // (Signed::keys empty). `time`: t= (default: now). Throws SignError.
    Signed sign(std::string_view wire, std::optional<std::int64_t> time = std::nullopt) const;

    const KeyTable& keys() const { return keys_; }
    const std::vector<std::string>& header_names() const { return headers_; }

private:
    KeyTable keys_;
    std::vector<std::string> headers_;
};

}  // namespace mxlane::dkim
