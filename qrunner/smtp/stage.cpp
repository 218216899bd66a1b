// stage: the words for each step of an SMTP dialogue, as Postfix puts them in its log lines.
#include "qrunner/smtp/session.hpp"

namespace mxlane::smtp {

std::string_view command_name(Stage stage) {
    switch (stage) {
    case Stage::connect: return "connect";
    case Stage::greeting: return "initial greeting";
    case Stage::helo: return "EHLO";
    case Stage::starttls: return "STARTTLS";
    case Stage::tls_handshake: return "TLS handshake";
    case Stage::auth: return "AUTH";
    case Stage::mail: return "MAIL FROM";
    case Stage::rcpt: return "RCPT TO";
    case Stage::data: return "DATA";
    case Stage::data_xfer: return "message body";
    case Stage::data_done: return "end of DATA";
    case Stage::rset: return "RSET";
    case Stage::quit: return "QUIT";
    }
    return "unknown";
}

std::string_view while_doing(Stage stage) {
    switch (stage) {
    case Stage::connect: return "connecting";
    case Stage::greeting: return "receiving the initial server greeting";
    case Stage::helo: return "performing the EHLO handshake";
    case Stage::starttls: return "sending STARTTLS";
    case Stage::tls_handshake: return "performing the TLS handshake";
    case Stage::auth: return "authenticating";
    case Stage::mail: return "sending MAIL FROM";
    case Stage::rcpt: return "sending RCPT TO";
    case Stage::data: return "sending DATA";
    case Stage::data_xfer: return "sending message body";
    case Stage::data_done: return "sending end of data -- message may be sent more than once";
    case Stage::rset: return "sending RSET";
    case Stage::quit: return "sending QUIT";
    }
    return "talking";
}

std::string describe_reply(const Reply& reply, Stage stage, std::string_view peer_host) {
    if (reply.synthetic) return reply.text;
    std::string out = "host " + std::string(peer_host);
    if (stage == Stage::greeting) return out + " refused to talk to me: " + reply.str();
    return out + " said: " + reply.str() + " (in reply to " + std::string(command_name(stage)) + " command)";
}

}  // namespace mxlane::smtp
