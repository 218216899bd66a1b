// stage: each step of an SMTP dialogue - its words in Postfix's log lines, the replies that let it go on, and what a transaction's replies accepted.
#include "qrunner/smtp/session.hpp"

#include <array>
#include <cstddef>

namespace mxlane::smtp {

namespace {

struct StageInfo {
    std::string_view command;           // "RCPT TO"
    std::string_view doing;             // "sending RCPT TO"
    std::array<int, 2> replies;         // the codes with which the dialogue goes on; 0: unused
    bool any_reply;                     // QUIT: whatever the server says
};

// One row per Stage, in its order. Expected replies: RFC 5321 4.3.2 (greeting,
// EHLO/HELO, MAIL, RCPT, DATA, end of data, RSET), RFC 3207 4 (STARTTLS),
// RFC 4954 4 (AUTH: 334 asks for more, 235 ends it). Steps that only write or
// connect read no reply.
constexpr std::array<StageInfo, 13> stages{{
    {"connect", "connecting", {}, false},
    {"initial greeting", "receiving the initial server greeting", {220}, false},
    {"EHLO", "performing the EHLO handshake", {250}, false},
    {"STARTTLS", "sending STARTTLS", {220}, false},
    {"TLS handshake", "performing the TLS handshake", {}, false},
    {"AUTH", "authenticating", {235, 334}, false},
    {"MAIL FROM", "sending MAIL FROM", {250}, false},
    {"RCPT TO", "sending RCPT TO", {250, 251}, false},
    {"DATA", "sending DATA", {354}, false},
    {"message body", "sending message body", {}, false},
    {"end of DATA", "sending end of data -- message may be sent more than once", {250}, false},
    {"RSET", "sending RSET", {250}, false},
    {"QUIT", "sending QUIT", {}, true},
}};
static_assert(stages.size() == static_cast<std::size_t>(Stage::quit) + 1, "one row per Stage");

const StageInfo& info(Stage stage) { return stages[static_cast<std::size_t>(stage)]; }

}  // namespace

std::string_view command_name(Stage stage) { return info(stage).command; }

std::string_view while_doing(Stage stage) { return info(stage).doing; }

bool expected_reply(Stage stage, int code) {
    const StageInfo& s = info(stage);
    if (s.any_reply) return true;
    for (int c : s.replies)
        if (c != 0 && c == code) return true;
    return false;
}

bool out_of_protocol(Stage stage, int code) {
    return !expected_reply(stage, code) && !(code >= 400 && code < 600);
}

std::string expected_replies(Stage stage) {
    const StageInfo& s = info(stage);
    if (s.any_reply) return "any reply";
    std::string out;
    for (int c : s.replies)
        if (c != 0) out += (out.empty() ? "" : " or ") + std::to_string(c);
    return out.empty() ? "no reply" : out;
}

std::string_view to_string(ConnectFailure failure) {
    switch (failure) {
    case ConnectFailure::none: return "none";
    case ConnectFailure::connect: return "connect";
    case ConnectFailure::refused: return "refused";
    case ConnectFailure::lost: return "lost";
    case ConnectFailure::protocol: return "protocol";
    case ConnectFailure::tls: return "tls";
    case ConnectFailure::auth: return "auth";
    case ConnectFailure::loop: return "loop";
    }
    return "unknown";
}

std::string describe_reply(const Reply& reply, Stage stage, std::string_view peer_host) {
    if (reply.synthetic) return reply.text;
    std::string out = "host " + std::string(peer_host);
    if (stage == Stage::greeting) return out + " refused to talk to me: " + reply.str();
    return out + " said: " + reply.str() + " (in reply to " + std::string(command_name(stage)) + " command)";
}

std::vector<std::string> TransactionResult::accepted(const Envelope& env) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < env.rcpts.size() && i < rcpts.size(); ++i)
        if (rcpts[i].positive()) out.push_back(env.rcpts[i]);
    return out;
}

}  // namespace mxlane::smtp
