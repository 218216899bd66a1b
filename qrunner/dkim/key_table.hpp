// key_table: dkim_key_table lines (DOMAIN SELECTOR KEYFILE) and the private keys they name, read once.
#pragma once
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace mxlane::dkim {

// One line saying which file and what is wrong ("/etc/mxlane/k.pem: not a PEM private key").
class KeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KeyLine {
    std::string domain;    // lower case, no trailing dot
    std::string selector;
    std::string file;
    int line = 0;          // in the table file, from 1
};

// The table's lines: '#' starts a comment, blank lines are skipped, every
// other line is exactly DOMAIN SELECTOR KEYFILE. A bad line, or the same
// domain and selector twice, throws KeyError("TABLE:LINE: problem").
std::vector<KeyLine> parse_key_table(std::string_view text, const std::string& table_file);

enum class Algorithm { rsa, ed25519 };

struct Key {
    std::string domain, selector, file;
    Algorithm algorithm = Algorithm::rsa;
    int bits = 0;
    std::shared_ptr<evp_pkey_st> pkey;  // parsed once; OpenSSL signs with it from any thread
    std::string public_key;  // the p= value: base64 of the SubjectPublicKeyInfo (RSA) or the raw 32 bytes (Ed25519, RFC 8463)

    std::string algorithm_name() const;  // "rsa-sha256", "ed25519-sha256"
    // The DNS record to publish, in zone-file form, the value split into
    // strings of at most 255 characters (RFC 1035 3.3.14):
    // sel._domainkey.shop.test. IN TXT "v=DKIM1; k=rsa; p=..."
    std::string txt_record() const;
};

// Reads and checks one PEM private key: missing, unreadable, malformed, of
// another type than RSA or Ed25519, or RSA under 1024 bits (RFC 8301 3.2)
// throws KeyError naming the file and the problem.
Key load_key(const KeyLine& line);
// The same for key text already in memory (`file` names it in errors).
Key parse_key(const KeyLine& line, std::string_view pem);

// The keys of dkim_key_table, by signing domain.
class KeyTable {
public:
    KeyTable() = default;
    // Reads the table and every key it names; throws KeyError on the first problem.
    static KeyTable load(const std::string& table_file);
    static KeyTable from_keys(std::vector<Key> keys);

    // The keys of `domain` or, when it has none, of its nearest parent that
    // has some (relaxed alignment: shop.test signs for news.shop.test); the
    // domain they belong to in `signing_domain`. nullptr when none has a key.
    const std::vector<Key>* keys_for(std::string_view domain, std::string* signing_domain = nullptr) const;
    const std::vector<Key>& all() const { return all_; }
    // Each key file can be opened by this process now: after the daemon has
    // become mail_owner, a key that root read but mail_owner cannot (and so
    // could not read again on SIGHUP) stops the start. Throws KeyError.
    void check_readable() const;
    bool empty() const { return all_.empty(); }

private:
    std::vector<Key> all_;                               // in table order
    std::map<std::string, std::vector<Key>, std::less<>> by_domain_;
};

}  // namespace mxlane::dkim
