// tls: OpenSSL client context per CA file, peer verification, session resumption cache.
#pragma once
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mxlane::smtp {

// smtp_tls_security_level, as Postfix names them.
enum class TlsLevel { none, may, encrypt, verify };
std::optional<TlsLevel> parse_tls_level(std::string_view text);
std::string_view to_string(TlsLevel level);

// What the peer's certificate proved, in Postfix's log words.
enum class TlsTrust { untrusted, trusted, verified };
std::string_view to_string(TlsTrust trust);  // "Untrusted", "Trusted", "Verified"

// Outcome of checking a finished handshake.
struct TlsPeer {
    TlsTrust trust = TlsTrust::untrusted;
    std::string reason;       // why not verified ("certificate has expired", ...); empty when verified
    std::string summary;      // "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    bool resumed = false;
};

// One client SSL_CTX; thread-safe to share between sessions. Sessions of
// every security level use it: the level only decides what the session does
// with the verification result (verify: refuse to go on unless verified).
class TlsContext {
public:
    // ca_file empty: the system's default store. Throws std::runtime_error
    // naming the file when it cannot be loaded.
    explicit TlsContext(const std::string& ca_file);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // One context per CA file for the whole process (built on first use).
    static std::shared_ptr<TlsContext> shared(const std::string& ca_file);

    boost::asio::ssl::context& native() { return ctx_; }

    // Before the handshake: SNI (RFC 6066 3, names only, never an IP
    // literal), the name the certificate must carry, and a cached session
    // for that name, if any.
    void prepare(SSL* ssl, const std::string& server_name);
    // After the handshake: trust, the reason it falls short, the summary line.
    static TlsPeer inspect(SSL* ssl);

    std::size_t cached_sessions() const;

private:
    static int on_new_session(SSL* ssl, SSL_SESSION* session);
    void remember(const std::string& name, SSL_SESSION* session);

    boost::asio::ssl::context ctx_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, SSL_SESSION*> sessions_;  // owned references
};

// True for a dotted IPv4 or an IPv6 literal (never used for SNI or name checks).
bool is_ip_literal(std::string_view name);

}  // namespace mxlane::smtp
