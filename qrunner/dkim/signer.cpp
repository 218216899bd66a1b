// signer: a message's final wire text -> the same text with DKIM-Signature fields in front (RFC 6376, RFC 8463).
#include "qrunner/dkim/signer.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <ctime>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "libshared/text.hpp"
#include "qrunner/ctl/mailbox_list.hpp"
#include "qrunner/dkim/canon.hpp"

namespace mxlane::dkim {
namespace {

std::string sha256(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1) throw SignError("SHA-256 failed");
    return std::string(reinterpret_cast<char*>(md), n);
}

// RSA: PKCS#1 v1.5 over SHA-256 of the data (RFC 6376 3.3.1). Ed25519:
// PureEdDSA over the SHA-256 hash of the data (RFC 8463 3).
std::string sign_data(const Key& key, std::string_view data) {
    struct CtxFree {
        void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
    const bool rsa = key.algorithm == Algorithm::rsa;
    std::string input = rsa ? std::string(data) : sha256(data);
    std::size_t len = 0;
    std::string sig;
    if (ctx && EVP_DigestSignInit(ctx.get(), nullptr, rsa ? EVP_sha256() : nullptr, nullptr, key.pkey.get()) == 1 &&
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
        sig.resize(len);
        if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
            sig.resize(len);
            return sig;
        }
    }
    char why[256] = "unknown error";
    if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    throw SignError("DKIM signing with " + key.file + " failed: " + why);
}

// Appends `text` to a field being built, folding (CRLF TAB) before it when the
// line would pass 78 characters; `line` is the current line's length.
void fold_append(std::string& out, std::size_t& line, std::string_view text, bool space_before) {
    if (line + text.size() + 1 > 78 && line > 1) {
        out += "\r\n\t";
        line = 1;
    } else if (space_before) {
        out += ' ';
        ++line;
    }
    out += text;
    line += text.size();
}

}  // namespace

std::string Signed::summary() const {
    std::string out;
    for (const Key* k : keys) {
        if (!out.empty()) out += ", ";
        out += "d=" + k->domain + " s=" + k->selector + " a=" + k->algorithm_name();
    }
    return out;
}

std::vector<std::string> signed_header_names(const std::vector<std::string>& configured) {
    std::vector<std::string> out{"From"};
    for (const auto& name : configured) {
        bool dup = false;
        for (const auto& have : out) dup = dup || same_field_name(have, name);
        if (!dup && !name.empty()) out.push_back(name);
    }
    return out;
}

std::string from_domain(std::string_view text) {
    auto fields = parse_header_section(text);
    const HeaderField* from = find_header_field(fields, "From");
    if (!from) return "";
    try {
        auto boxes = ctl::parse_address_list(from->value);
        if (boxes.empty()) return "";
        return domain_of(boxes.front().address);
    } catch (const ctl::AddressSyntaxError&) {
        return "";
    }
}

std::string signature_field(const Key& key, const std::vector<std::string>& fields, std::string_view body,
                            const std::vector<std::string>& names, std::int64_t time) {
    const std::string canon_body = relaxed_body(body);
    const std::string bh = sha256(canon_body);
    const auto h = header_list(fields, names, {"From"});
    // RFC 6376 3.5 tags; b= last and empty while the field is hashed (3.7).
    std::string field = "DKIM-Signature:";
    std::size_t line = field.size();
    for (const std::string& tag :
         {std::string("v=1;"), "a=" + key.algorithm_name() + ";", std::string("c=relaxed/relaxed;"), "d=" + key.domain + ";",
          "s=" + key.selector + ";", "t=" + std::to_string(time) + ";",
          "bh=" + base64(bh) + ";"})
        fold_append(field, line, tag, true);
    // h= folds only after a colon (FWS, RFC 6376 3.5), never inside a name.
    std::string hlist = "h=";
    bool first = true;
    for (std::size_t i = 0; i < h.size(); ++i) {
        std::string item = h[i] + (i + 1 < h.size() ? ":" : ";");
        if (hlist.size() > 2 && line + hlist.size() + item.size() + 1 > 78) {
            fold_append(field, line, hlist, first);
            first = false;
            hlist.clear();
        }
        hlist += item;
    }
    fold_append(field, line, hlist, first);
    fold_append(field, line, "b=", true);
    std::string data = signed_header_data(fields, h);
    std::string self = relaxed_header(field);
    self.resize(self.size() - 2);  // the signature field itself goes in without its CRLF (3.7)
    data += self;
    const std::string sig = sign_data(key, data);
    const std::string b = base64(sig);
    for (std::size_t i = 0; i < b.size();) {
        std::size_t room = line < 77 ? 77 - line : 0;
        if (room < 8) {
            field += "\r\n\t";
            line = 1;
            continue;
        }
        std::string_view chunk = std::string_view(b).substr(i, room);
        field += chunk;
        line += chunk.size();
        i += chunk.size();
    }
    field += "\r\n";
    return field;
}

Signer::Signer(KeyTable keys, const std::vector<std::string>& signed_headers)
    : keys_(std::move(keys)), headers_(signed_header_names(signed_headers)) {}

Signed Signer::sign(std::string_view wire, std::optional<std::int64_t> time) const {
    Signed out;
    out.from_domain = from_domain(wire);
    const std::vector<Key>* keys =
        out.from_domain.empty() ? nullptr : keys_.keys_for(out.from_domain, &out.signing_domain);
    if (!keys) {
        out.text = std::string(wire);
        return out;
    }
    const MessageParts parts = split_wire(wire);
    const std::int64_t t = time.value_or(static_cast<std::int64_t>(std::time(nullptr)));
    std::string sigs;
    for (const Key& k : *keys) {
        sigs += signature_field(k, parts.fields, parts.body, headers_, t);
        out.keys.push_back(&k);
    }
    out.text.reserve(sigs.size() + wire.size());
    out.text = std::move(sigs);
    out.text.append(wire);
    return out;
}

}  // namespace mxlane::dkim
