// delivery: one outgoing connection for a destination, sending its queued transactions in turn.
#include "qrunner/delivery.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/render_plan.hpp"
#include "libshared/template.hpp"
#include "qrunner/mx_connect.hpp"
#include "qrunner/recipient_loop.hpp"
#include "qrunner/scheduler.hpp"
#include "qrunner/smtp/downgrade.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The message for one recipient of a personalised one, final (the text to sign and send).
std::string render_for(const MessageData& m, const store::Recipient& r) {
    if (!m.plan) return render_template(m.text, m.meta.field_names, r.fields, r.address);
    return mime::render_message(*m.plan, m.meta.field_names, r.fields, r.address, m.meta.smtputf8);
}

// Parameters by value: the coroutine frame owns them (no lambda captures, which GCC 12 coroutines mishandle).
asio::awaitable<dkim::Signed> sign_task(std::shared_ptr<const dkim::Signer> signer,
                                        std::shared_ptr<const std::string> wire) {
    co_return signer->sign(*wire);
}

// A personalised message (or the 7-bit form of a plain one) is signed as it
// goes on the wire, on the signing pool: an RSA-2048 signature costs about
// 0.3 ms of CPU (more on a busy machine), too long for the event loop's
// threads, which carry every session.
asio::awaitable<std::shared_ptr<const std::string>> signed_on_pool(Scheduler& sch, const Settings& s,
                                                                   std::shared_ptr<const std::string> wire,
                                                                   std::string what) {
    auto sig = co_await asio::co_spawn(sch.sign_pool().get_executor(), sign_task(s.dkim, wire), asio::use_awaitable);
    if (!sig.is_signed()) co_return wire;  // no key: dkim_missing_key was applied at load
    log::info(what + ": DKIM-Signature field added (" + sig.summary() + ")");
    co_return std::make_shared<const std::string>(std::move(sig.text));
}

// The wire text for this transaction: shared for a plain message (signed once
// at load), rendered and signed for the one recipient of a personalised one
// or of one that gets List-Unsubscribe fields;
// the relay's loop header goes in front of it in the session, outside the
// signature. When the
// server lacks 8BITMIME and the message is signed, the 7-bit form is made
// here and signed as it is sent (`seven_bit`), since the session's own
// downgrade would break the signature.
asio::awaitable<std::shared_ptr<const std::string>> wire_for(Scheduler& sch, const Work& w, const Settings& s,
                                                             bool seven_bit) {
    const MessageData& m = *w.message;
    std::shared_ptr<const std::string> wire = m.wire;
    const bool personalised = m.meta.personalised;
    // List-Unsubscribe: the copy of one recipient gets its own fields.
    const bool unsubscribe = w.rcpts.size() == 1 && needs_unsubscribe_fields(s, m.meta);
    if (personalised || unsubscribe) {
        const store::Recipient& r = w.rcpts.front();
        std::string text = personalised ? render_for(m, r) : m.text;
        if (unsubscribe) text = with_unsubscribe_fields(s, m, r, std::move(text));
        wire = std::make_shared<const std::string>(m.received + smtp::to_wire(text).text);
    } else if (seven_bit) {
        wire = std::make_shared<const std::string>(m.received + smtp::to_wire(m.text).text);
    }
    if (seven_bit) wire = std::make_shared<const std::string>(smtp::downgrade_to_7bit(*wire));
    if (s.dkim && (personalised || unsubscribe || seven_bit)) {
        std::string what = m.job_token + ": message " + std::to_string(m.meta.id) +
                           (personalised || unsubscribe ? " to " + w.rcpts.front().address : std::string()) +
                           (seven_bit ? " (7-bit)" : "");
        wire = co_await signed_on_pool(sch, s, std::move(wire), std::move(what));
    }
    co_return wire;
}

smtp::Envelope envelope_for(const Work& w, std::size_t size, const Settings& s) {
    smtp::Envelope env;
    // VERP: a transaction of one recipient carries that recipient's token (one
    // dispatched before bounce_address was set on SIGHUP keeps the stored sender).
    env.mail_from = w.rcpts.size() == 1 ? envelope_sender(s, *w.message, w.rcpts.front()) : w.message->meta.sender;
    for (const auto& r : w.rcpts) env.rcpts.push_back(r.address);
    env.smtputf8 = w.message->meta.smtputf8;
    env.eight_bit = w.message->eight_bit;
    env.size = size;
    if (w.path == Path::relay) {
        // The relay gets the loop header, made for the recipients it takes.
        env.size += 128;
        env.leading_fields = [m = w.message, dir = s.queue_directory, sender = env.mail_from](
                                 const std::vector<std::string>& accepted, const std::string& data) {
            return m->relay_field(sender, accepted, data, dir, store::now_ms() / 1000);
        };
    }
    return env;
}

// A session to one of the destination's hosts (see connect_mx).
asio::awaitable<smtp::ConnectResult> open_session(Scheduler& sch, const Destination& d, const Settings& s) {
    smtp::Options opts = s.smtp_for(d.policy_name);
    opts.tls_context = sch.tls_context(opts.tls_ca_file);
    if (d.source) {
        // A pool's address: this connection goes from it, under its own EHLO name.
        opts.source_address = d.source->address;
        opts.helo_name = d.source->helo;
    }
    if (d.path == Path::relay && !s.cfg.get("relay_username").empty()) {
        opts.auth_user = s.cfg.get("relay_username");
        opts.auth_password = s.relay_password;
    }
    ConnectTarget target{sch.hosts(d), d.port, d.policy_name, d.path == Path::direct};
    ConnectHooks hooks;
    hooks.failed = [&](const smtp::ConnectResult& r) {
        log::info("connect to " + (r.peer.empty() ? d.policy_name : r.peer) + ": " + r.error.str());
    };
    hooks.throttling = [&](const Reply& r) { return sch.throttling(r); };
    auto r = co_await connect_mx(sch.io().get_executor(), target, s, std::move(opts), hooks);
    if (r) {
        if (!r.session->tls_fallback().empty())
            log::info("TLS with " + r.session->peer_name() + " failed, sending in clear: " +
                      r.session->tls_fallback());
        // Postfix's own line, apart from the delivery lines (pflogsumm reads those).
        if (r.session->tls_active()) log::info(r.session->tls_log_line());
    }
    co_return r;
}

// "host[ip]" of "host[ip]:port".
std::string host_part(const std::string& peer) {
    auto close = peer.rfind(']');
    return close == std::string::npos ? peer : peer.substr(0, close + 1);
}

// Per recipient: the reply that decides it, and its Postfix-shaped log text.
void replies_of(const smtp::TransactionResult& res, const smtp::Session& session, std::vector<Reply>& replies,
                std::vector<std::string>& details) {
    for (const auto& rcpt : res.rcpts) {
        smtp::Stage stage;
        const Reply* reply;
        if (!res.mail.positive()) {
            reply = &res.mail;
            stage = smtp::Stage::mail;
        } else if (!rcpt.positive()) {
            reply = &rcpt;
            stage = smtp::Stage::rcpt;
        } else {
            reply = &res.data;
            stage = res.data_stage;
        }
        replies.push_back(*reply);
        details.push_back(reply->positive() ? reply->str() : session.describe(*reply, stage));
    }
}

// Did the server say "too many" anywhere in this transaction? Was it clean (no temporary failure)?
const Reply* throttling_reply(Scheduler& sch, const smtp::TransactionResult& res) {
    if (sch.throttling(res.mail)) return &res.mail;
    for (const auto& r : res.rcpts)
        if (sch.throttling(r)) return &r;
    if (sch.throttling(res.data)) return &res.data;
    return nullptr;
}

// The reply that speaks for a whole transaction: MAIL's refusal, else DATA's,
// else (every recipient refused) the first recipient's.
const Reply& deciding(const smtp::TransactionResult& res) {
    if (!res.mail.positive() || res.rcpts.empty() || res.data.code != 0) return res.mail.positive() ? res.data : res.mail;
    return res.rcpts.front();
}

// Counts a transaction's recipients on the wire while it lasts (mxlanectl destinations).
class OnWire {
public:
    OnWire(Destination& d, std::size_t n) : d_(d), n_(static_cast<int>(n)) { d_.on_wire += n_; }
    ~OnWire() { d_.on_wire -= n_; }
    OnWire(const OnWire&) = delete;
    OnWire& operator=(const OnWire&) = delete;

private:
    Destination& d_;
    int n_;
};

bool clean(const smtp::TransactionResult& res) {
    if (res.mail.temporary() || res.data.temporary() || res.connection_lost) return false;
    for (const auto& r : res.rcpts)
        if (r.temporary()) return false;
    return true;
}

// A refusal at the greeting or EHLO, even a 5xx, says nothing about the
// recipients: the next host is tried, and when none is left the transaction
// is deferred (Postfix's smtp_skip_5xx_greeting). A 5xx must never bounce a
// destination's queue; only a mail loop (5.4.6) does.
Reply as_deferral(const smtp::ConnectResult& c) {
    const Reply& r = c.error;
    const std::string& peer = c.peer;
    if (!r.permanent() || c.failure == smtp::ConnectFailure::loop) return r;
    std::string dsn = r.dsn();
    dsn[0] = '4';
    return Reply::make(450, dsn, "host " + (peer.empty() ? std::string("?") : host_part(peer)) +
                                     " refused to talk to me: " + r.str());
}

// One connection: its first transaction and then whatever the destination has
// queued. Every transaction taken is owned by an OwnedWork, so an exception
// or a torn-down coroutine still gives each recipient an outcome.
asio::awaitable<void> run_connection(Scheduler& sch, const std::shared_ptr<Destination>& d, OwnedWork& w) {
    auto s = sch.settings();
    auto t0 = Clock::now();
    auto r = co_await open_session(sch, *d, *s);
    double connect_s = since(t0);
    if (!r) {
        const Reply why = as_deferral(r);
        sch.note_reply(d, why);
        if (sch.throttling(why)) {
            // A 421 greeting: this transaction is deferred like any other
            // 4xx, and the destination backs off.
            sch.back_off(d, why);
            std::string detail = smtp::describe_reply(why, r.stage, host_part(r.peer));
            w.conclude(std::vector<Reply>(w.work().rcpts.size(), why), r.peer.empty() ? "none" : r.peer, connect_s,
                       0, std::vector<std::string>(w.work().rcpts.size(), detail));
        } else {
            sch.destination_unreachable(d, std::move(w), why, "none");
        }
        co_return;
    }
    std::unique_ptr<smtp::Session> session = std::move(r.session);
    asio::steady_timer idle(sch.io());
    int sent = 0;
    while (w) {
        OnWire on_wire(*d, w.work().rcpts.size());
        auto t1 = Clock::now();
        // Signed and 8-bit, to a server without 8BITMIME: made 7-bit before signing.
        const bool seven_bit = s->dkim && w.work().message->eight_bit && !session->capabilities().eight_bit_mime;
        auto data = co_await wire_for(sch, w.work(), *s, seven_bit);
        auto env = envelope_for(w.work(), data->size(), *s);
        if (seven_bit) env.eight_bit = false;
        auto res = co_await session->send(env, data);
        ++sent;
        std::vector<Reply> replies;
        std::vector<std::string> details;
        replies_of(res, *session, replies, details);
        w.conclude(replies, session->peer_name(), connect_s, since(t1), details);
        sch.note_reply(d, deciding(res));
        connect_s = 0;
        if (const Reply* why = throttling_reply(sch, res)) {
            sch.back_off(d, *why);
            break;
        }
        if (clean(res)) sch.transaction_clean(d);
        if (!session->usable()) break;
        // The next transaction, perhaps after an idle wait for the message rate.
        bool waited = false;
        for (;;) {
            auto next = sch.take_work(*d, sent, waited);
            if (!next.wait_until) {
                w = std::move(next.work);
                break;
            }
            idle.expires_at(*next.wait_until);
            co_await idle.async_wait(asio::as_tuple(asio::use_awaitable));
            waited = true;
        }
    }
    if (session->usable()) co_await session->quit();
}

}  // namespace

asio::awaitable<void> deliver(Scheduler& sch, std::shared_ptr<Destination> d, OwnedWork first) {
    ConnectionSlot slot(sch.gate(), d);
    OwnedWork w = std::move(first);
    try {
        co_await run_connection(sch, d, w);
    } catch (const std::exception& e) {
        // The transaction in hand (if any) is deferred with this reason when w
        // goes; the connection's slot is freed by `slot`.
        w.set_failure(e.what());
        log::error("delivery to " + d->policy_name + " failed: " + e.what());
    }
}

}  // namespace mxlane::qrunner
