// fuzz target dkim_canon: any message, made wire form and signed by mxlane's own canonicalisation and signer,
// is verified by OpenDKIM's library (an independent implementation); the same message with its body changed is not.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cctype>

#include "fuzz/fuzz_input.hpp"
#include "libshared/header_section.hpp"
#include "qrunner/dkim/canon.hpp"
#include "qrunner/dkim/signer.hpp"
#include "qrunner/smtp/message_data.hpp"
#include "tests/unit/opendkim_oracle.hpp"

using namespace mxlane;

namespace {

dkim::Key ed25519_key() {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* pem = nullptr;
    long n = BIO_get_mem_data(bio, &pem);
    auto key = dkim::parse_key(dkim::KeyLine{"shop.test", "fz", "/fuzz.pem", 1}, std::string_view(pem, n));
    BIO_free(bio);
    EVP_PKEY_free(k);
    return key;
}

// The text a receiver gets: the dot-stuffing undone.
std::string unstuffed(const std::string& wire) {
    std::string out;
    bool line_start = true;
    for (char c : wire) {
        if (line_start && c == '.') {
            line_start = false;
            continue;
        }
        out += c;
        line_start = c == '\n';
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const dkim::Key key = ed25519_key();
    static const dkim::Signer signer(dkim::KeyTable::from_keys({key}), {"To", "Subject", "Date", "X-A", "X-B"});
    static const test::OpendkimVerifier verifier(
        {{"fz._domainkey.shop.test", "v=DKIM1; k=ed25519; p=" + key.public_key}});
    // A From: of the key's domain first, then the input as more header fields and a body.
    std::string stored = "From: a@shop.test\n" + std::string(fuzz::as_text(data, size));
    std::string wire = smtp::to_wire(stored).text;
    auto parts = dkim::split_wire(wire);
    // Field names of letters, digits and '-' only: OpenDKIM refuses some names
    // RFC 5322 2.2 allows ("X-;" fails there, dkimpy verifies it), dkimpy
    // refuses WSP before the colon (RFC 5322 4.5 obsolete syntax), and a field
    // without a colon is no field; those say nothing about canonicalisation.
    for (const auto& f : parts.fields) {
        std::string_view name = std::string_view(f).substr(0, f.find(':'));  // WSP before the colon is refused too
        if (name.empty() || name.size() == f.size() || f.find('\0') != std::string::npos) return 0;
        for (char c : name)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return 0;
        // A DKIM-Signature of the input's own (broken, as fuzzed) makes OpenDKIM give up on the message.
        if (same_field_name(name, "DKIM-Signature")) return 0;
        // Control characters in a value (VT, FF, ...): OpenDKIM and dkimpy
        // canonicalise them differently from each other (mxlane follows dkimpy).
        for (char c : f)
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r' && c != '\n') return 0;
    }
    if (parts.body.find('\0') != std::string::npos) return 0;
    auto sig = signer.sign(wire, 1700000000);
    if (!sig.is_signed()) {  // the input folded something into From: that is no address: left as it is
        if (sig.text != wire) __builtin_trap();
        return 0;
    }
    if (sig.keys.size() != 1) __builtin_trap();
    const std::string message = unstuffed(sig.text);
    if (verifier.passed(message) != 1) __builtin_trap();
    // Text added to the body changes what relaxed canonicalisation keeps: the signature fails.
    if (verifier.passed(message + "changed\r\n") != 0) __builtin_trap();
    return 0;
}
