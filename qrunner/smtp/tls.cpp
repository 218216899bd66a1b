// tls: OpenSSL client context per CA file, peer verification, session resumption cache.
#include "qrunner/smtp/tls.hpp"

#include <boost/asio/ip/address.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace mxlane::smtp {

namespace {
constexpr std::size_t max_cached_sessions = 4096;

// Where the SSL_CTX points back to its TlsContext (asio keeps its own verify
// callback in the app data slot, so that one is taken).
int context_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}
}  // namespace

std::optional<TlsLevel> parse_tls_level(std::string_view text) {
    if (text == "none") return TlsLevel::none;
    if (text == "may") return TlsLevel::may;
    if (text == "encrypt") return TlsLevel::encrypt;
    if (text == "verify") return TlsLevel::verify;
    return std::nullopt;
}

std::string_view to_string(TlsLevel level) {
    switch (level) {
    case TlsLevel::none: return "none";
    case TlsLevel::may: return "may";
    case TlsLevel::encrypt: return "encrypt";
    case TlsLevel::verify: return "verify";
    }
    return "none";
}

std::string_view to_string(TlsTrust trust) {
    switch (trust) {
    case TlsTrust::untrusted: return "Untrusted";
    case TlsTrust::trusted: return "Trusted";
    case TlsTrust::verified: return "Verified";
    }
    return "Untrusted";
}

bool is_ip_literal(std::string_view name) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(std::string(name), ec);
    return !ec;
}

TlsContext::TlsContext(const std::string& ca_file) : ctx_(boost::asio::ssl::context::tls_client) {
    ctx_.set_options(boost::asio::ssl::context::default_workarounds | boost::asio::ssl::context::no_sslv2 |
                     boost::asio::ssl::context::no_sslv3 | boost::asio::ssl::context::no_compression);
    boost::system::error_code ec;
    if (ca_file.empty())
        ctx_.set_default_verify_paths(ec);
    else
        ctx_.load_verify_file(ca_file, ec);
    if (ec)
        throw std::runtime_error("cannot load TLS CA file " + (ca_file.empty() ? "(system store)" : ca_file) +
                                 ": " + ec.message());
    // Opportunistic levels must complete the handshake whatever the
    // certificate; the result is read afterwards (SSL_get_verify_result).
    SSL_CTX* native = ctx_.native_handle();
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_ex_data(native, context_index(), this);
    // Client-side cache only; OpenSSL hands us each new session (with TLS 1.3
    // that arrives after the handshake, in a NewSessionTicket).
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(native, &TlsContext::on_new_session);
}

TlsContext::~TlsContext() {
    for (auto& [name, session] : sessions_) SSL_SESSION_free(session);
}

std::shared_ptr<TlsContext> TlsContext::shared(const std::string& ca_file) {
    static std::mutex mutex;
    static std::unordered_map<std::string, std::shared_ptr<TlsContext>> contexts;
    std::lock_guard lock(mutex);
    auto& slot = contexts[ca_file];
    if (!slot) slot = std::make_shared<TlsContext>(ca_file);
    return slot;
}

void TlsContext::prepare(SSL* ssl, const std::string& server_name) {
    if (server_name.empty() || is_ip_literal(server_name)) return;
    SSL_set_tlsext_host_name(ssl, server_name.c_str());
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, server_name.c_str());
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(server_name);
    if (it == sessions_.end()) return;
    // The connection gets a copy: a session that ends without a TLS shutdown
    // (every one of ours: QUIT, then close) is marked not resumable by
    // OpenSSL, and that must not spoil the cached one for the next connection.
    if (SSL_SESSION* copy = SSL_SESSION_dup(it->second)) {
        SSL_set_session(ssl, copy);
        SSL_SESSION_free(copy);  // the SSL holds its own reference
    }
}

int TlsContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    auto* self = static_cast<TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), context_index()));
    if (!name || !self || !SSL_SESSION_is_resumable(session)) return 0;
    // A copy, for the same reason as in prepare(): this session object stays
    // the connection's, and the connection's end marks it not resumable.
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) self->remember(name, copy);
    return 0;  // OpenSSL keeps its reference to `session`
}

void TlsContext::remember(const std::string& name, SSL_SESSION* session) {
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= max_cached_sessions && !sessions_.count(name)) {
        // Cheap bound: start over rather than track ages.
        for (auto& [n, s] : sessions_) SSL_SESSION_free(s);
        sessions_.clear();
    }
    auto [it, inserted] = sessions_.emplace(name, session);
    if (!inserted) {
        SSL_SESSION_free(it->second);
        it->second = session;
    }
}

std::size_t TlsContext::cached_sessions() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

TlsPeer TlsContext::inspect(SSL* ssl) {
    TlsPeer peer;
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
    peer.summary = std::string(SSL_get_version(ssl)) + " with cipher " +
                   (cipher ? SSL_CIPHER_get_name(cipher) : "unknown") + " (" + std::to_string(bits) + "/" +
                   std::to_string(alg_bits) + " bits)";
    peer.resumed = SSL_session_reused(ssl) == 1;
    if (!SSL_get0_peer_certificate(ssl)) {
        peer.reason = "no server certificate";
        return peer;
    }
    long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) {
        peer.reason = X509_verify_cert_error_string(result);
        return peer;
    }
    // prepare() set a name to check only for host names; with it set, an OK
    // result includes the name check (a resumed session was cached under,
    // and verified against, the same name).
    bool name_checked = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0) != nullptr;
    peer.trust = name_checked ? TlsTrust::verified : TlsTrust::trusted;
    if (!name_checked) peer.reason = "no host name to match the certificate against";
    return peer;
}

}  // namespace mxlane::smtp
