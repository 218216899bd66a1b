// session: one SMTP client connection (RFC 5321) with STARTTLS and pipelining, as coroutines
// (EHLO keywords and AUTH: capabilities.cpp).
#include "qrunner/smtp/session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <tuple>

#include "libshared/address.hpp"
#include "qrunner/smtp/downgrade.hpp"

namespace mxlane::smtp {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);

// The first word of a reply's text (after an enhanced code): in a greeting or
// an EHLO reply, the name the server gives itself (RFC 5321 4.1.1.1, 4.2).
std::string first_word(const Reply& reply) {
    if (reply.lines.empty()) return {};
    std::string_view line = reply.lines.front();
    auto word = [&line]() {
        auto start = line.find_first_not_of(" \t");
        if (start == std::string_view::npos) return std::string_view{};
        line.remove_prefix(start);
        auto end = line.find_first_of(" \t");
        std::string_view w = line.substr(0, end);
        line.remove_prefix(w.size());
        return w;
    };
    std::string_view w = word();
    if (!reply.enhanced.empty() && w == reply.enhanced) w = word();
    return std::string(w);
}

}  // namespace

// ---- construction and state

Session::Session(asio::any_io_executor ex, asio::ip::tcp::endpoint ep, std::string host_name, const Options& opts)
    : strand_(asio::make_strand(ex)),
      endpoint_(ep),
      host_name_(std::move(host_name)),
      opts_(opts),
      socket_(strand_),
      step_timer_(strand_) {
    std::string ip = endpoint_.address().to_string();
    peer_host_ = (host_name_.empty() ? ip : host_name_) + "[" + ip + "]";
    peer_name_ = peer_host_ + ":" + std::to_string(endpoint_.port());
}

Session::~Session() { close(); }

bool Session::usable() const { return !broken_ && socket_.is_open(); }

std::string Session::tls_log_line() const {
    if (!tls_) return {};
    return std::string(to_string(tls_peer_.trust)) + " TLS connection established to " + peer_name_ + ": " +
           tls_peer_.summary;
}

Reply Session::broken(Reply why) {
    if (!broken_) broken_ = why;
    close();
    return why;
}

void Session::close() {
    tls_.reset();
    error_code ignored;
    socket_.close(ignored);
}

// ---- timed primitives

// Runs `op` against the step's time limit, on one timer per session: when the
// limit passes first, the handler cancels the socket's pending operation and
// the step gives nullopt. Cheaper than racing a second coroutine per step, and
// no exception when the step wins. The handler runs on this strand, like the
// step: either the step still waits (the session is alive) or `over` says it
// ended, and the handler leaves the session alone (it may be gone).
template <typename T>
awaitable<std::optional<T>> Session::within(std::chrono::seconds limit, awaitable<T> op) {
    struct Watch {
        bool expired = false, over = false;
    };
    auto watch = std::make_shared<Watch>();
    step_timer_.expires_after(limit);
    step_timer_.async_wait([this, watch](error_code ec) {
        if (ec || watch->over) return;
        watch->expired = true;
        error_code ignored;
        socket_.cancel(ignored);
    });
    T result = co_await std::move(op);
    watch->over = true;
    step_timer_.cancel();
    if (watch->expired) co_return std::nullopt;
    co_return std::optional<T>(std::move(result));
}

awaitable<Reply> Session::read_reply(Stage stage, std::chrono::seconds limit) {
    if (broken_) co_return *broken_;
    auto got = co_await within(limit, raw_read());
    if (!got) {
        lost_ = true;
        co_return broken(Reply::make(451, "4.4.2",
                                     "conversation with " + peer_host_ + " timed out while " +
                                         std::string(while_doing(stage))));
    }
    if (got->status == ReplyParser::Status::malformed) {
        lost_ = protocol_error_ = true;
        co_return broken(Reply::make(451, "4.5.0",
                                     "protocol error: malformed reply from " + peer_host_ + " while " +
                                         std::string(while_doing(stage)) + ": " + parser_.error()));
    }
    if (got->ec) {
        lost_ = true;
        co_return broken(Reply::make(451, "4.4.2",
                                     "lost connection with " + peer_host_ + " while " +
                                         std::string(while_doing(stage))));
    }
    Reply& reply = got->reply;
    // RFC 5321 3.8: 421 means the server is closing the channel.
    if (reply.code == 421) co_return broken(std::move(reply));
    // The one check of every reply against its step (stage.cpp): a server
    // that is out of step with us decides nothing, least of all a recipient.
    if (out_of_protocol(stage, reply.code)) {
        lost_ = protocol_error_ = true;
        co_return broken(Reply::make(451, "4.5.0",
                                     "protocol error: host " + peer_host_ + " said \"" + reply.str() + "\" while " +
                                         std::string(while_doing(stage)) + " (expected " + expected_replies(stage) +
                                         ")"));
    }
    co_return std::move(reply);
}

awaitable<std::optional<Reply>> Session::write(Buffers buffers, Stage stage, std::chrono::seconds limit) {
    if (broken_) co_return *broken_;
    auto ec = co_await within(limit, raw_write(std::move(buffers)));
    if (ec && !*ec) co_return std::nullopt;
    lost_ = true;
    std::string what = ec ? "lost connection with " + peer_host_ : "conversation with " + peer_host_ + " timed out";
    co_return broken(Reply::make(451, "4.4.2", what + " while " + std::string(while_doing(stage))));
}

awaitable<Reply> Session::command(std::string line, Stage stage, std::chrono::seconds limit) {
    line += "\r\n";
    Buffers buffers{asio::buffer(line)};
    if (auto failed = co_await write(std::move(buffers), stage, limit)) co_return *failed;
    co_return co_await read_reply(stage, limit);
}

// ---- opening: connect, greeting, EHLO, STARTTLS, AUTH

awaitable<ConnectResult> Session::open(asio::any_io_executor ex, asio::ip::tcp::endpoint ep, std::string host_name,
                                       Options opts) {
    std::unique_ptr<Session> session(new Session(ex, ep, std::move(host_name), opts));
    ConnectResult result;
    result.peer = session->peer_name_;
    auto failed = co_await asio::co_spawn(session->strand_, session->do_open(), use_awaitable);
    if (failed) {
        result.failure = failed->kind;
        result.error = std::move(failed->reply);
        result.stage = failed->stage;
        co_return result;
    }
    result.session = std::move(session);
    co_return result;
}

awaitable<std::optional<Session::Failure>> Session::do_open() {
    if (opts_.tls != TlsLevel::none && !opts_.tls_context) {
        try {
            opts_.tls_context = TlsContext::shared(opts_.tls_ca_file);
        } catch (const std::exception& e) {
            co_return Failure{Reply::make(451, "4.7.5", e.what()), Stage::tls_handshake, ConnectFailure::tls};
        }
    }
    if (auto failed = co_await connect_and_hello()) co_return failed;
    if (opts_.tls != TlsLevel::none)
        if (auto failed = co_await negotiate_tls()) co_return failed;
    if (!opts_.auth_user.empty())
        if (auto failed = co_await authenticate()) co_return failed;
    co_return std::nullopt;
}

awaitable<std::optional<Session::Failure>> Session::connect_and_hello() {
    close();
    socket_ = asio::ip::tcp::socket(strand_);
    parser_.reset();
    broken_.reset();
    lost_ = protocol_error_ = false;
    auto ec = co_await within(opts_.timeouts.connect, raw_connect());
    if (!ec || *ec) {
        std::string why = ec ? ec->message() : "Connection timed out";
        close();
        co_return Failure{Reply::make(451, "4.4.1", "connect to " + peer_name_ + ": " + why), Stage::connect,
                          ConnectFailure::connect};
    }
    error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    Reply greeting = co_await read_reply(Stage::greeting, opts_.timeouts.helo);
    if (greeting.code != 220) co_return failed(std::move(greeting), Stage::greeting, ConnectFailure::refused);
    greeting_name_ = first_word(greeting);
    if (auto loop = co_await check_loop(greeting_name_, Stage::greeting)) co_return loop;
    co_return co_await hello();
}

awaitable<std::optional<Session::Failure>> Session::hello() {
    caps_ = Capabilities{};
    Reply reply = co_await command("EHLO " + opts_.helo_name, Stage::helo, opts_.timeouts.helo);
    if (reply.code == 250) {
        parse_capabilities(reply);
    } else if (reply.permanent() && !reply.synthetic) {
        // RFC 5321 4.1.4: a server that does not know EHLO answers 5xx; use HELO.
        reply = co_await command("HELO " + opts_.helo_name, Stage::helo, opts_.timeouts.helo);
    }
    if (reply.code != 250) co_return failed(std::move(reply), Stage::helo, ConnectFailure::refused);
    ehlo_name_ = first_word(reply);
    co_return co_await check_loop(ehlo_name_, Stage::helo);
}

// Postfix's smtp client does the same: a server that calls itself by this
// host's name is this host (or set up to look like it), so the mail would come
// back here; retrying cannot help.
awaitable<std::optional<Session::Failure>> Session::check_loop(const std::string& server_name, Stage stage) {
    if (opts_.loop_name.empty() || to_lower(server_name) != to_lower(opts_.loop_name)) co_return std::nullopt;
    co_await do_quit();
    std::string domain = opts_.next_hop.empty() ? host_name_ : opts_.next_hop;
    co_return Failure{Reply::make(554, "5.4.6", "mail for " + domain + " loops back to myself"), stage,
                      ConnectFailure::loop};
}

// An opening step ended with `reply`. The server's own reply is a failure of
// kind `server_said`; a synthetic one says how the connection broke.
Session::Failure Session::failed(Reply reply, Stage stage, ConnectFailure server_said) {
    close();
    ConnectFailure kind = !reply.synthetic   ? server_said
                          : protocol_error_ ? ConnectFailure::protocol
                                            : ConnectFailure::lost;
    return Failure{std::move(reply), stage, kind};
}

awaitable<std::optional<Session::Failure>> Session::negotiate_tls() {
    bool required = opts_.tls == TlsLevel::encrypt || opts_.tls == TlsLevel::verify;
    if (!caps_.starttls) {
        if (!required) co_return std::nullopt;
        co_await do_quit();
        co_return Failure{Reply::make(451, "4.7.4", "TLS is required, but was not offered by host " + peer_host_),
                          Stage::starttls, ConnectFailure::tls};
    }
    Reply reply = co_await command("STARTTLS", Stage::starttls, opts_.timeouts.helo);
    if (reply.code != 220) {
        if (!required && usable()) {
            tls_fallback_ = "STARTTLS refused: " + reply.str();
            co_return std::nullopt;
        }
        co_return failed(std::move(reply), Stage::starttls, ConnectFailure::tls);
    }
    // RFC 3207 4.2: nothing said before the handshake counts afterwards.
    parser_.reset();
    tls_.emplace(socket_, opts_.tls_context->native());
    std::string name = opts_.tls_server_name.empty() ? host_name_ : opts_.tls_server_name;
    opts_.tls_context->prepare(tls_->native_handle(), name);
    auto ec = co_await within(opts_.timeouts.helo, raw_handshake());
    if (!ec || *ec) {
        std::string why = "TLS handshake with " + peer_host_ + " failed: " + (ec ? ec->message() : "timed out");
        if (required) {
            close();
            co_return Failure{Reply::make(451, "4.7.5", why), Stage::tls_handshake, ConnectFailure::tls};
        }
        // Opportunistic TLS: a new connection in clear text.
        tls_fallback_ = why + "; continued in clear text";
        co_return co_await connect_and_hello();
    }
    tls_peer_ = TlsContext::inspect(tls_->native_handle());
    if (opts_.tls == TlsLevel::verify && tls_peer_.trust != TlsTrust::verified) {
        close();
        co_return Failure{Reply::make(451, "4.7.5",
                                      "Server certificate not verified for " + peer_host_ + ": " + tls_peer_.reason),
                          Stage::tls_handshake, ConnectFailure::tls};
    }
    co_return co_await hello();
}

// ---- transactions

awaitable<TransactionResult> Session::send(const Envelope& env, std::shared_ptr<const std::string> data) {
    co_return co_await asio::co_spawn(strand_, do_send(env, std::move(data)), use_awaitable);
}

awaitable<void> Session::rset() { co_await asio::co_spawn(strand_, do_rset(), use_awaitable); }

awaitable<void> Session::quit() { co_await asio::co_spawn(strand_, do_quit(), use_awaitable); }

awaitable<TransactionResult> Session::do_send(const Envelope& env, std::shared_ptr<const std::string> data) {
    TransactionResult res;
    if (env.rcpts.empty()) co_return res;
    if (dirty_) co_await do_rset();
    auto fail_all = [&](const Reply& why) {
        res.mail = why;
        res.rcpts.assign(env.rcpts.size(), why);
        res.data = why;
        res.data_stage = Stage::mail;
    };
    if (!usable()) {
        fail_all(broken_ ? *broken_
                         : Reply::make(451, "4.4.2", "connection with " + peer_host_ + " is no longer usable"));
        res.connection_lost = true;
        co_return res;
    }
    // RFC 6531 3.4: no SMTPUTF8 at the server means the message cannot go there.
    if (env.smtputf8 && !caps_.smtputf8) {
        fail_all(Reply::make(550, "5.6.7", "SMTPUTF8 is required, but was not offered by host " + peer_host_));
        co_return res;
    }
    // RFC 6152 3: 8-bit text goes to a server without 8BITMIME only re-encoded as 7-bit.
    std::size_t size = env.size;
    if (env.eight_bit && !caps_.eight_bit_mime && data) {
        data = std::make_shared<const std::string>(downgrade_to_7bit(*data));
        if (size > 0) size = std::max(size, data->size());
    }
    // RFC 1870 6: no point in sending what the server announced it would refuse.
    if (caps_.size_limit > 0 && size > caps_.size_limit) {
        fail_all(Reply::make(552, "5.3.4",
                             "message size " + std::to_string(size) + " exceeds size limit " +
                                 std::to_string(caps_.size_limit) + " of server " + peer_host_));
        co_return res;
    }
    std::string mail = "MAIL FROM:<" + env.mail_from + ">";
    if (caps_.size && size > 0) mail += " SIZE=" + std::to_string(size);
    if (env.eight_bit && caps_.eight_bit_mime) mail += " BODY=8BITMIME";
    if (env.smtputf8) mail += " SMTPUTF8";
    if (!env.extra_mail_params.empty()) mail += " " + env.extra_mail_params;
    res.rcpts.resize(env.rcpts.size());
    if (caps_.pipelining)
        co_await pipelined(env, mail, res);
    else
        co_await lockstep(env, mail, res);
    bool accepted = std::any_of(res.rcpts.begin(), res.rcpts.end(), [](const Reply& r) { return r.positive(); });
    if (!accepted) {
        res.data = Reply{};
        res.data_stage = Stage::data;
    } else if (res.data_stage == Stage::data && res.data.code == 354) {
        static const std::string empty;
        const std::string& text = data ? *data : empty;
        // A named local: GCC 12 mishandles a conditional's temporary kept across co_await.
        const std::string leading = env.leading_fields ? env.leading_fields(res.accepted(env), text) : std::string();
        co_await transfer(leading, text, res);
    }
    res.connection_lost = lost_;
    co_return res;
}

// RFC 2920 3.1: MAIL, every RCPT and DATA go out in one write; the replies
// come back in the same order.
awaitable<void> Session::pipelined(const Envelope& env, const std::string& mail, TransactionResult& res) {
    std::string batch = mail + "\r\n";
    for (const auto& rcpt : env.rcpts) batch += "RCPT TO:<" + rcpt + ">\r\n";
    if (!env.stop_before_data) batch += "DATA\r\n";
    dirty_ = true;
    Buffers buffers{asio::buffer(batch)};
    if (auto failed = co_await write(std::move(buffers), Stage::mail, opts_.timeouts.mail)) {
        res.mail = *failed;
        res.rcpts.assign(env.rcpts.size(), *failed);
        res.data = *failed;
        res.data_stage = Stage::mail;
        co_return;
    }
    res.mail = co_await read_reply(Stage::mail, opts_.timeouts.mail);
    bool accepted = false;
    for (auto& r : res.rcpts) {
        r = co_await read_reply(Stage::rcpt, opts_.timeouts.rcpt);
        if (!res.mail.positive() && !broken_) r = res.mail;
        accepted = accepted || r.positive();
    }
    if (env.stop_before_data) co_return;  // the transaction stays open: the next one sends RSET
    res.data = co_await read_reply(Stage::data, opts_.timeouts.data_init);
    res.data_stage = Stage::data;
    if (!accepted && res.data.code == 354) {
        // RFC 2920 3.1: no text without a recipient; an empty message keeps
        // the dialogue in step, and it is not delivered anywhere.
        Buffers dot{asio::buffer(".\r\n", 3)};
        if (!co_await write(std::move(dot), Stage::data_done, opts_.timeouts.data_done))
            co_await read_reply(Stage::data_done, opts_.timeouts.data_done);
    }
}

awaitable<void> Session::lockstep(const Envelope& env, const std::string& mail, TransactionResult& res) {
    dirty_ = true;
    res.mail = co_await command(mail, Stage::mail, opts_.timeouts.mail);
    if (!res.mail.positive()) {
        res.rcpts.assign(env.rcpts.size(), res.mail);
        co_return;
    }
    bool accepted = false;
    for (std::size_t i = 0; i < env.rcpts.size(); ++i) {
        res.rcpts[i] = co_await command("RCPT TO:<" + env.rcpts[i] + ">", Stage::rcpt, opts_.timeouts.rcpt);
        accepted = accepted || res.rcpts[i].positive();
    }
    if (!accepted || env.stop_before_data) co_return;
    res.data = co_await command("DATA", Stage::data, opts_.timeouts.data_init);
    res.data_stage = Stage::data;
}

// RFC 5321 4.5.3.2.5/6: one data_xfer limit per block written, then the
// data_done limit for the reply to the final dot.
awaitable<void> Session::transfer(const std::string& leading, const std::string& data, TransactionResult& res) {
    static const std::string dot = ".\r\n";
    std::size_t block = std::max<std::size_t>(opts_.data_block, 512);
    std::size_t at = 0;
    do {
        std::size_t n = std::min(block, data.size() - at);
        Buffers buffers;
        if (at == 0 && !leading.empty()) buffers.push_back(asio::buffer(leading));
        buffers.push_back(asio::buffer(data.data() + at, n));
        at += n;
        if (at == data.size()) buffers.push_back(asio::buffer(dot));
        if (auto failed = co_await write(std::move(buffers), Stage::data_xfer, opts_.timeouts.data_xfer)) {
            res.data = *failed;
            res.data_stage = Stage::data_xfer;
            co_return;
        }
    } while (at < data.size());
    res.data = co_await read_reply(Stage::data_done, opts_.timeouts.data_done);
    res.data_stage = Stage::data_done;
    // RFC 5321 4.1.1.4: the reply to the dot ends the transaction either way.
    dirty_ = !usable();
}

awaitable<void> Session::do_rset() {
    if (!usable()) co_return;
    Reply reply = co_await command("RSET", Stage::rset, opts_.timeouts.rset);
    dirty_ = false;
    // A server that refuses RSET is out of step with us: stop using it.
    if (reply.code != 250) broken(Reply::make(451, "4.4.2", "RSET refused by " + peer_host_ + ": " + reply.str()));
}

awaitable<void> Session::do_quit() {
    if (usable()) {
        // RFC 5321 4.1.1.10: the reply decides nothing; smtp_quit_timeout says how long it is worth.
        co_await command("QUIT", Stage::quit, opts_.timeouts.quit);
    }
    close();
}

}  // namespace mxlane::smtp
