// capabilities: what the server's EHLO offers, and SASL AUTH (PLAIN, LOGIN) with it, for Session.
#include "qrunner/smtp/session.hpp"

#include <algorithm>
#include <sstream>

#include "libshared/text.hpp"

namespace mxlane::smtp {

using boost::asio::awaitable;

namespace {

bool has_mechanism(const Capabilities& caps, std::string_view mech) {
    return std::find(caps.auth.begin(), caps.auth.end(), mech) != caps.auth.end();
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

}  // namespace

void Session::parse_capabilities(const Reply& ehlo) {
    caps_.esmtp = true;
    // The first line is the server's greeting name, each later one a keyword.
    for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
        std::istringstream words(ehlo.lines[i]);
        std::string keyword;
        words >> keyword;
        keyword = upper(keyword);
        if (keyword == "PIPELINING") caps_.pipelining = true;
        else if (keyword == "8BITMIME") caps_.eight_bit_mime = true;
        else if (keyword == "SMTPUTF8") caps_.smtputf8 = true;
        else if (keyword == "STARTTLS") caps_.starttls = true;
        else if (keyword == "ENHANCEDSTATUSCODES") caps_.enhanced_status = true;
        else if (keyword == "DSN") caps_.dsn = true;
        else if (keyword == "CHUNKING") caps_.chunking = true;
        else if (keyword == "SIZE") {
            caps_.size = true;
            unsigned long long limit = 0;
            if (words >> limit) caps_.size_limit = static_cast<std::size_t>(limit);
        } else if (keyword == "AUTH" || keyword.rfind("AUTH=", 0) == 0) {
            if (keyword.size() > 5) caps_.auth.push_back(keyword.substr(5));
            for (std::string mech; words >> mech;) caps_.auth.push_back(upper(mech));
        }
    }
}

awaitable<std::optional<Session::Failure>> Session::authenticate() {
    auto fail = [this](std::string_view dsn, std::string text) {
        close();
        return Failure{Reply::make(451, std::string(dsn), std::move(text)), Stage::auth, ConnectFailure::auth};
    };
    if (!tls_) co_return fail("4.7.0", "SASL authentication with " + peer_host_ + " needs TLS, which is not active");
    if (caps_.auth.empty()) co_return std::nullopt;  // the server may relay for us anyway
    Reply reply;
    if (has_mechanism(caps_, "PLAIN")) {
        std::string token = std::string(1, '\0') + opts_.auth_user + '\0' + opts_.auth_password;
        reply = co_await command("AUTH PLAIN " + base64(token), Stage::auth, opts_.timeouts.helo);
    } else if (has_mechanism(caps_, "LOGIN")) {
        reply = co_await command("AUTH LOGIN", Stage::auth, opts_.timeouts.helo);
        if (reply.code == 334) reply = co_await command(base64(opts_.auth_user), Stage::auth, opts_.timeouts.helo);
        if (reply.code == 334)
            reply = co_await command(base64(opts_.auth_password), Stage::auth, opts_.timeouts.helo);
    } else {
        co_return fail("4.7.0", "no SASL mechanism offered by " + peer_host_ + " that mxlane supports");
    }
    if (reply.code == 235) co_return std::nullopt;
    if (reply.synthetic) co_return failed(std::move(reply), Stage::auth, ConnectFailure::auth);  // it broke
    // A wrong password must not bounce the queue: defer (as Postfix does).
    co_return fail("4.7.8", "SASL authentication failed; server " + peer_host_ + " said: " + reply.str());
}

}  // namespace mxlane::smtp
