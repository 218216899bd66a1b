// key_table: dkim_key_table lines (DOMAIN SELECTOR KEYFILE) and the private keys they name, read once.
#include "qrunner/dkim/key_table.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "libshared/address.hpp"
#include "libshared/text.hpp"
#include <cctype>

namespace mxlane::dkim {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};

// RFC 6376 3.1 and 3.5: a selector and a domain are sub-domains (labels of
// letters, digits, '-' and '_' seen in practice, separated by dots).
bool dns_name(std::string_view s) {
    if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
    std::size_t label = 0;
    for (char c : s) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
        if (++label > 63) return false;
    }
    return true;
}

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return std::string(" (") + buf + ")";
}

}  // namespace

std::vector<KeyLine> parse_key_table(std::string_view text, const std::string& table_file) {
    std::vector<KeyLine> out;
    std::set<std::pair<std::string, std::string>> seen;
    int number = 0;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++number;
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        std::istringstream words{std::string(line)};
        std::vector<std::string> w;
        for (std::string word; words >> word;) w.push_back(word);
        if (w.empty()) continue;
        const std::string where = table_file + ":" + std::to_string(number) + ": ";
        if (w.size() != 3) throw KeyError(where + "expected DOMAIN SELECTOR KEYFILE, found " + std::to_string(w.size()) + " words");
        KeyLine k;
        k.domain = to_lower(w[0]);
        if (!k.domain.empty() && k.domain.back() == '.') k.domain.pop_back();
        k.selector = w[1];
        k.file = w[2];
        k.line = number;
        if (!dns_name(k.domain)) throw KeyError(where + "not a domain name: " + w[0]);
        if (!dns_name(k.selector)) throw KeyError(where + "not a selector (a DNS label or labels): " + w[1]);
        if (k.file.front() != '/') throw KeyError(where + "KEYFILE must be an absolute path: " + k.file);
        if (!seen.insert({k.domain, to_lower(k.selector)}).second)
            throw KeyError(where + "domain " + k.domain + " selector " + k.selector + " appears twice");
        out.push_back(std::move(k));
    }
    return out;
}

std::string Key::algorithm_name() const { return algorithm == Algorithm::rsa ? "rsa-sha256" : "ed25519-sha256"; }

std::string Key::txt_record() const {
    std::string value = std::string("v=DKIM1; k=") + (algorithm == Algorithm::rsa ? "rsa" : "ed25519") + "; p=" + public_key;
    std::string out = selector + "._domainkey." + domain + ". IN TXT";
    for (std::size_t i = 0; i < value.size(); i += 255) out += " \"" + value.substr(i, 255) + "\"";
    return out;
}

Key parse_key(const KeyLine& line, std::string_view pem) {
    const std::string& file = line.file;
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) throw KeyError(file + ": out of memory");
    ERR_clear_error();
    std::unique_ptr<EVP_PKEY, PkeyFree> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey) throw KeyError(file + ": not a PEM private key" + openssl_error());
    Key k;
    k.domain = line.domain;
    k.selector = line.selector;
    k.file = file;
    switch (EVP_PKEY_get_base_id(pkey.get())) {
    case EVP_PKEY_RSA: {
        k.algorithm = Algorithm::rsa;
        k.bits = EVP_PKEY_get_bits(pkey.get());
        if (k.bits < 1024)
            throw KeyError(file + ": RSA key of " + std::to_string(k.bits) + " bits; at least 1024 are needed (RFC 8301)");
        unsigned char* der = nullptr;
        int n = i2d_PUBKEY(pkey.get(), &der);
        if (n <= 0) throw KeyError(file + ": cannot encode the public key" + openssl_error());
        k.public_key = base64(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
        OPENSSL_free(der);
        break;
    }
    case EVP_PKEY_ED25519: {
        k.algorithm = Algorithm::ed25519;
        k.bits = 256;
        unsigned char raw[32];
        std::size_t n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(pkey.get(), raw, &n) != 1 || n != sizeof raw)
            throw KeyError(file + ": cannot read the Ed25519 public key" + openssl_error());
        k.public_key = base64(std::string_view(reinterpret_cast<const char*>(raw), n));
        break;
    }
    default:
        throw KeyError(file + ": key of unknown type " + OBJ_nid2sn(EVP_PKEY_get_base_id(pkey.get())) +
                       "; RSA or Ed25519 are needed");
    }
    k.pkey = std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free);
    return k;
}

Key load_key(const KeyLine& line) {
    std::ifstream in(line.file, std::ios::binary);
    if (!in) throw KeyError(line.file + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw KeyError(line.file + ": cannot read: " + std::strerror(errno));
    return parse_key(line, text.str());
}

KeyTable KeyTable::load(const std::string& table_file) {
    std::ifstream in(table_file);
    if (!in) throw KeyError(table_file + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    std::vector<Key> keys;
    for (const auto& line : parse_key_table(text.str(), table_file)) keys.push_back(load_key(line));
    return from_keys(std::move(keys));
}

void KeyTable::check_readable() const {
    for (const auto& k : all_) {
        std::ifstream in(k.file, std::ios::binary);
        if (!in) throw KeyError(k.file + ": cannot read: " + std::strerror(errno));
    }
}

KeyTable KeyTable::from_keys(std::vector<Key> keys) {
    KeyTable t;
    for (const auto& k : keys) t.by_domain_[k.domain].push_back(k);
    t.all_ = std::move(keys);
    return t;
}

const std::vector<Key>* KeyTable::keys_for(std::string_view domain, std::string* signing_domain) const {
    std::string d = to_lower(domain);
    while (!d.empty() && d.back() == '.') d.pop_back();
    for (std::string_view rest = d; !rest.empty();) {
        if (auto it = by_domain_.find(rest); it != by_domain_.end()) {
            if (signing_domain) *signing_domain = it->first;
            return &it->second;
        }
        auto dot = rest.find('.');
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return nullptr;
}

}  // namespace mxlane::dkim
