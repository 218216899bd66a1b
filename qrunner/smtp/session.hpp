// session: one SMTP client connection (RFC 5321) with STARTTLS, AUTH and pipelining, as coroutines.
#pragma once
#include "libshared/smtp_reply.hpp"
#include "qrunner/smtp/tls.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::smtp {

// Per-step limits. A step is one whole reply or one block of writing, however
// many reads it takes. No defaults here: the parameter table (smtp_*_timeout in
// libshared/params.cpp) is their one source, and Settings fills every field; a
// zero limit ends its step at once.
struct Timeouts {
    std::chrono::seconds connect{0}, helo{0}, mail{0}, rcpt{0}, data_init{0}, data_xfer{0}, data_done{0}, rset{0},
        quit{0};
};

struct Options {
    std::string helo_name;
    Timeouts timeouts;
    TlsLevel tls = TlsLevel::may;
    std::string tls_ca_file;                  // empty: the system store
    std::string tls_server_name;              // name to verify and send as SNI; empty: host_name
    std::string auth_user, auth_password;     // AUTH PLAIN/LOGIN, only ever over TLS
    std::shared_ptr<TlsContext> tls_context;  // null: TlsContext::shared(tls_ca_file)
    std::size_t data_block = 64 * 1024;       // message text is written in blocks of this size
    // This host's myhostname: a server whose greeting or EHLO/HELO reply names
    // itself with it (first word, any case) is this host, and the mail loops.
    // Empty: no check (the relay host is often this host's own MTA).
    std::string loop_name;
    std::string next_hop;                     // the domain named in the loop reply; empty: host_name
    std::string source_address;               // local address to connect from (source_pools); empty: the kernel's
};

// Where in the dialogue something happened; names the command for log lines.
enum class Stage { connect, greeting, helo, starttls, tls_handshake, auth, mail, rcpt, data, data_xfer, data_done, rset, quit };
std::string_view command_name(Stage stage);  // "RCPT TO", "end of DATA", ...
std::string_view while_doing(Stage stage);   // "receiving the initial server greeting", ...
// The replies with which the dialogue goes on after a step (one table in
// stage.cpp: greeting 220, EHLO 250, DATA 354, ...). A 4xx or 5xx is the
// server's refusal at any step; any other code is out of protocol, and Session
// makes it a protocol error (451 4.5.0) and drops the connection.
bool expected_reply(Stage stage, int code);
bool out_of_protocol(Stage stage, int code);  // neither expected nor 4xx/5xx
std::string expected_replies(Stage stage);     // "250 or 251", for the protocol error's text

// Postfix-shaped detail for a log line: "host mx[192.0.2.7] said: 550 5.1.1 no
// such user (in reply to RCPT TO command)", or a synthetic reply's own text.
std::string describe_reply(const Reply& reply, Stage stage, std::string_view peer_host);

struct Envelope {
    std::string mail_from;              // may be empty: MAIL FROM:<>
    std::vector<std::string> rcpts;
    bool smtputf8 = false;              // needs SMTPUTF8 (RFC 6531)
    bool eight_bit = false;             // BODY=8BITMIME when offered (RFC 6152)
    std::size_t size = 0;               // SIZE= when offered (RFC 1870); 0: not sent
    std::string extra_mail_params;      // appended to MAIL FROM as is ("RET=HDRS ENVID=...")
    bool stop_before_data = false;      // address probe (mxlanectl verify): MAIL and RCPT only, no DATA
    // Header fields (wire form) to send before the data, made after the 354,
    // when the recipients the server took and the data as it goes out (7-bit
    // downgrade included) are known: the relay's loop token is bound to them.
    std::function<std::string(const std::vector<std::string>& accepted, const std::string& data)> leading_fields;
};

struct TransactionResult {
    Reply mail;
    // One per envelope recipient, in order. When MAIL failed, each is the MAIL reply.
    std::vector<Reply> rcpts;
    // The final reply after the dot; or the DATA reply when DATA itself
    // failed; or a synthetic 4xx. Code 0 when no recipient was accepted.
    Reply data;
    Stage data_stage = Stage::data_done;  // which command `data` answers
    bool connection_lost = false;          // lost, timed out, garbled or out of protocol (not a 421)

    // The recipients of `env` the server took (a 2xx RCPT reply), in order.
    std::vector<std::string> accepted(const Envelope& env) const;
};

// What the server offered in its EHLO reply (RFC 5321 4.1.1.1).
struct Capabilities {
    bool esmtp = false, pipelining = false, size = false, eight_bit_mime = false, smtputf8 = false,
         starttls = false, enhanced_status = false, dsn = false, chunking = false;
    std::size_t size_limit = 0;          // 0: none announced
    std::vector<std::string> auth;       // mechanisms, upper case
};

class Session;

// Why Session::open gave no session. Delivery acts on this and on `stage`,
// never on the reply's code alone (a server may say anything).
enum class ConnectFailure {
    none,      // the session is ready for MAIL
    connect,   // no TCP connection: refused, unreachable or timed out (synthetic 4.4.1)
    refused,   // the server's own 4xx/5xx to the greeting (stage greeting) or to EHLO and
               // then HELO (stage helo), a 421 among them: try the next MX
    lost,      // the connection was lost or a step timed out after connecting (synthetic 4.4.2)
    protocol,  // a malformed reply or one out of protocol, e.g. a 250 greeting (synthetic 4.5.0)
    tls,       // TLS required but not offered, STARTTLS refused, the handshake failed or the
               // certificate was not verified (stage starttls or tls_handshake; 4.7.x)
    auth,      // SASL authentication failed or impossible (stage auth; synthetic 4.7.x)
    loop,      // the server named itself with Options::loop_name (stage greeting or helo):
               // synthetic 554 5.4.6 "mail for DOMAIN loops back to myself", permanent
};
std::string_view to_string(ConnectFailure failure);  // "refused", "protocol", ...

struct ConnectResult {
    std::unique_ptr<Session> session;  // set when the session is ready for MAIL
    ConnectFailure failure = ConnectFailure::none;  // else what went wrong, and
    Reply error;                       // the server's reply (refused, tls) or a synthetic one that says why
    Stage stage = Stage::connect;      // the step that failed
    std::string peer;                  // "host[ip]:port"
    explicit operator bool() const { return session != nullptr; }
    // The server itself said no at greeting or EHLO/HELO (4xx or 5xx).
    bool refused() const { return failure == ConnectFailure::refused; }
    bool loops() const { return failure == ConnectFailure::loop; }
};

// One connection. Every operation runs on the session's own strand, so the
// io_context may be run by several threads; the caller awaits one operation
// at a time and does not destroy the session while one is in flight.
class Session {
public:
    // Connect, greeting, EHLO (HELO when EHLO is refused), STARTTLS per the
    // level (then EHLO again, RFC 3207 4.2), AUTH when credentials are set.
    // Every reply is checked against its step (expected_reply); the result's
    // `failure` and `stage` say what went wrong where.
    static boost::asio::awaitable<ConnectResult> open(boost::asio::any_io_executor ex,
                                                      boost::asio::ip::tcp::endpoint ep, std::string host_name,
                                                      Options opts);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // One transaction. `data` is the wire form from to_wire() (CRLF, dot-stuffed,
    // ends in CRLF); the session adds the final ".". Sends RSET first when the
    // previous transaction was left open.
    boost::asio::awaitable<TransactionResult> send(const Envelope& env, std::shared_ptr<const std::string> data);
    boost::asio::awaitable<void> rset();
    // QUIT, a wait of at most timeouts.quit for its reply, then close.
    boost::asio::awaitable<void> quit();

    // False after a lost connection, a 421, a protocol error or a timeout.
    bool usable() const;
    const std::string& peer_name() const { return peer_name_; }  // "host[ip]:port"
    const std::string& peer_host() const { return peer_host_; }  // "host[ip]"
    const Capabilities& capabilities() const { return caps_; }
    // The first word of the greeting's text and of the EHLO (or HELO) reply:
    // the names the server gives itself.
    const std::string& greeting_name() const { return greeting_name_; }
    const std::string& ehlo_name() const { return ehlo_name_; }
    bool pipelining() const { return caps_.pipelining; }
    bool supports_size() const { return caps_.size; }
    bool tls_active() const { return tls_.has_value(); }
    // Empty, or "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)".
    std::string tls_summary() const { return tls_ ? tls_peer_.summary : std::string(); }
    bool tls_verified() const { return tls_ && tls_peer_.trust == TlsTrust::verified; }
    TlsTrust tls_trust() const { return tls_peer_.trust; }
    bool tls_resumed() const { return tls_ && tls_peer_.resumed; }
    // Postfix's TLS log line: "Verified TLS connection established to
    // host[ip]:port: TLSv1.3 with cipher ..."; empty without TLS.
    std::string tls_log_line() const;
    // Non-empty when level "may" fell back to clear text: why.
    const std::string& tls_fallback() const { return tls_fallback_; }
    // A Postfix-shaped log detail for a reply this session produced.
    std::string describe(const Reply& reply, Stage stage) const { return describe_reply(reply, stage, peer_host_); }

private:
    struct Failure {
        Reply reply;
        Stage stage;
        ConnectFailure kind;
    };
    struct RawRead {
        ReplyParser::Status status = ReplyParser::Status::incomplete;
        Reply reply;
        boost::system::error_code ec;
    };
    using Buffers = std::vector<boost::asio::const_buffer>;

    Session(boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint ep, std::string host_name,
            const Options& opts);

    boost::asio::awaitable<std::optional<Failure>> do_open();
    boost::asio::awaitable<std::optional<Failure>> connect_and_hello();
    boost::asio::awaitable<std::optional<Failure>> hello();
    boost::asio::awaitable<std::optional<Failure>> negotiate_tls();
    boost::asio::awaitable<std::optional<Failure>> authenticate();
    boost::asio::awaitable<std::optional<Failure>> check_loop(const std::string& server_name, Stage stage);
    Failure failed(Reply reply, Stage stage, ConnectFailure server_said);
    boost::asio::awaitable<TransactionResult> do_send(const Envelope& env, std::shared_ptr<const std::string> data);
    boost::asio::awaitable<void> pipelined(const Envelope& env, const std::string& mail, TransactionResult& res);
    boost::asio::awaitable<void> lockstep(const Envelope& env, const std::string& mail, TransactionResult& res);
    boost::asio::awaitable<void> transfer(const std::string& leading, const std::string& data, TransactionResult& res);
    boost::asio::awaitable<void> do_rset();
    boost::asio::awaitable<void> do_quit();

    // One timed step each; on failure the session is broken and they return
    // (and keep returning) the synthetic reply that says why.
    boost::asio::awaitable<Reply> read_reply(Stage stage, std::chrono::seconds limit);
    boost::asio::awaitable<std::optional<Reply>> write(Buffers buffers, Stage stage, std::chrono::seconds limit);
    boost::asio::awaitable<Reply> command(std::string line, Stage stage, std::chrono::seconds limit);

    boost::asio::awaitable<boost::system::error_code> raw_connect();
    boost::asio::awaitable<boost::system::error_code> raw_handshake();
    boost::asio::awaitable<RawRead> raw_read();
    boost::asio::awaitable<boost::system::error_code> raw_write(Buffers buffers);
    template <typename T>
    boost::asio::awaitable<std::optional<T>> within(std::chrono::seconds limit, boost::asio::awaitable<T> op);

    Reply broken(Reply why);  // marks the session unusable for good, returns `why`
    void close();
    void parse_capabilities(const Reply& ehlo);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::string host_name_, peer_name_, peer_host_;
    Options opts_;
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer step_timer_;  // the time limit of the step in progress (within)
    std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    std::shared_ptr<TlsContext> tls_context_;
    TlsPeer tls_peer_;
    std::string tls_fallback_;
    std::string greeting_name_, ehlo_name_;
    Capabilities caps_;
    ReplyParser parser_;
    std::array<char, 4096> read_buffer_{};
    std::optional<Reply> broken_;   // why the session is unusable
    bool lost_ = false;             // broken by the connection, not by a 421
    bool protocol_error_ = false;   // ... because a reply was malformed or out of protocol
    bool dirty_ = false;            // a transaction is open: RSET before the next
};

}  // namespace mxlane::smtp
