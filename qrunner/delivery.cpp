// delivery: one outgoing connection for a destination, sending its queued transactions in turn.
#include "qrunner/delivery.hpp"

#include <boost/asio/io_context.hpp>

#include "libshared/log.hpp"
#include "libshared/loop_token.hpp"
#include "libshared/template.hpp"
#include "qrunner/scheduler.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::qrunner {

namespace asio = boost::asio;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The wire text for this transaction: shared for a plain message, rendered
// for the one recipient of a personalised one; with the loop header for the relay.
std::shared_ptr<const std::string> wire_for(const Work& w, const Settings& s) {
    const MessageData& m = *w.message;
    if (!m.meta.personalised)
        return w.path == Path::relay ? m.relay_wire(s.queue_directory) : m.wire;
    const store::Recipient& r = w.rcpts.front();
    auto wire = smtp::to_wire(render_template(m.text, m.meta.field_names, r.fields, r.address));
    if (w.path != Path::relay) return std::make_shared<const std::string>(std::move(wire.text));
    std::string token = loop_token_make(s.queue_directory, m.job_token, m.meta.id);
    return std::make_shared<const std::string>(std::string(kLoopHeader) + ": " + token + "\r\n" + wire.text);
}

smtp::Envelope envelope_for(const Work& w, std::size_t size) {
    smtp::Envelope env;
    env.mail_from = w.message->meta.sender;
    for (const auto& r : w.rcpts) env.rcpts.push_back(r.address);
    env.smtputf8 = w.message->meta.smtputf8;
    env.eight_bit = w.message->eight_bit;
    env.size = size;
    return env;
}

asio::awaitable<smtp::ConnectResult> open_session(Scheduler& sch, const Destination& d, const Settings& s) {
    smtp::ConnectResult last;
    last.error = Reply::make(451, "4.4.4", "no mail host to try for " + d.policy_name);
    for (const auto& host : d.hosts) {
        for (const auto& addr : host.addresses) {
            smtp::Options opts = s.smtp_for(d.policy_name);
            opts.tls_server_name = host.name;
            opts.tls_context = sch.tls_context(opts.tls_ca_file);
            if (d.path == Path::relay && !s.cfg.get("relay_username").empty()) {
                opts.auth_user = s.cfg.get("relay_username");
                opts.auth_password = s.relay_password;
            }
            auto r = co_await smtp::Session::open(sch.io().get_executor(),
                                                  asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(d.port)),
                                                  host.name, opts);
            if (r) {
                if (!r.session->tls_fallback().empty())
                    log::info("TLS with " + r.session->peer_name() + " failed, sending in clear: " +
                              r.session->tls_fallback());
                if (r.session->tls_active())
                    log::info(std::string(smtp::to_string(r.session->tls_trust())) + " TLS connection established to " +
                              r.session->peer_name() + ": " + r.session->tls_summary());
                co_return r;
            }
            log::info("connect to " + (r.peer.empty() ? host.name : r.peer) + ": " + r.error.text);
            last = std::move(r);
        }
    }
    co_return last;
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

}  // namespace

asio::awaitable<void> deliver(Scheduler& sch, std::shared_ptr<Destination> d, Work first) {
    auto s = sch.settings();
    std::unique_ptr<smtp::Session> session;
    int sent = 0;
    std::optional<Work> w = std::move(first);
    double connect_s = 0;
    while (w) {
        if (!session || !session->usable() || sent >= d->messages_per_connection) {
            if (session && session->usable()) co_await session->quit();
            session.reset();
            auto t0 = Clock::now();
            auto r = co_await open_session(sch, *d, *s);
            connect_s = since(t0);
            if (!r) {
                sch.destination_unreachable(d, std::move(*w), r.error, "none");
                break;
            }
            session = std::move(r.session);
            sent = 0;
        }
        auto t1 = Clock::now();
        auto data = wire_for(*w, *s);
        auto res = co_await session->send(envelope_for(*w, data->size()), data);
        ++sent;
        std::vector<Reply> replies;
        std::vector<std::string> details;
        replies_of(res, *session, replies, details);
        sch.conclude(*w, replies, session->peer_name(), connect_s, since(t1), details);
        connect_s = 0;
        w = sch.take_work(*d);
    }
    if (session && session->usable()) co_await session->quit();
    sch.connection_done(d);
}

}  // namespace mxlane::qrunner
