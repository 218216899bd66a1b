// engine: mxlane's own implementation of the milter protocol (version 6), behind the libmilter
// calls mxlane-milter makes, so that the filter runs on it or on libmilter (configure
// --with-libmilter) unchanged. The thread serving an MTA connection reads whatever it has sent
// in one system call, runs the callbacks of every whole packet in it and answers in one write:
// steps the MTA does not wait for cost no extra trip, and nothing polls before each read or
// hands a connection between threads, which is where libmilter spends its time
// (bench/intake.sh, "Intake" in bench/README.md). The socket and the threads that accept
// the connections are in engine_listen.cpp.
#include "milter/engine.hpp"

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <algorithm>
#include <arpa/inet.h>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

constexpr std::uint32_t kProtocolVersion = 6;
constexpr std::size_t kMaxPacket = 64 * 1024 * 1024;  // far above any header or body chunk an MTA sends
constexpr std::size_t kKeptBuffer = 1024 * 1024;      // a thread keeps its read buffer up to this size
constexpr int kReadTimeoutSeconds = 7210;             // libmilter's default: the MTA's own timeouts come first
constexpr int kStages = 7;                            // SMFIM_CONNECT .. SMFIM_EOH

smfiDesc g_desc{};

// The macro stage a 'D' packet fills, by the command it precedes.
int stage_of(char cmd) {
    switch (cmd) {
    case SMFIC_CONNECT: return SMFIM_CONNECT;
    case SMFIC_HELO: return SMFIM_HELO;
    case SMFIC_MAIL: return SMFIM_ENVFROM;
    case SMFIC_RCPT: return SMFIM_ENVRCPT;
    case SMFIC_DATA: return SMFIM_DATA;
    case SMFIC_BODYEOB: return SMFIM_EOM;
    case SMFIC_EOH: return SMFIM_EOH;
    default: return -1;
    }
}

// The SMFIP_NR_* bit of a step: the MTA does not wait for its answer when negotiated so.
unsigned long no_reply_bit(char cmd) {
    switch (cmd) {
    case SMFIC_CONNECT: return SMFIP_NR_CONN;
    case SMFIC_HELO: return SMFIP_NR_HELO;
    case SMFIC_MAIL: return SMFIP_NR_MAIL;
    case SMFIC_RCPT: return SMFIP_NR_RCPT;
    case SMFIC_DATA: return SMFIP_NR_DATA;
    case SMFIC_UNKNOWN: return SMFIP_NR_UNKN;
    case SMFIC_EOH: return SMFIP_NR_EOH;
    case SMFIC_BODY: return SMFIP_NR_BODY;
    case SMFIC_HEADER: return SMFIP_NR_HDR;
    default: return 0;
    }
}

std::string_view unbraced(std::string_view name) {
    if (name.size() >= 2 && name.front() == '{' && name.back() == '}') return name.substr(1, name.size() - 2);
    return name;
}

void put32(std::string& out, std::uint32_t v) {
    v = htonl(v);
    out.append(reinterpret_cast<const char*>(&v), 4);
}

std::uint32_t get32(const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return ntohl(v);
}

// The NUL-terminated strings of a packet's data (a missing last NUL ends the data too).
std::vector<char*> strings_of(char* data, std::size_t len) {
    std::vector<char*> out;
    for (std::size_t i = 0; i < len;) {
        out.push_back(data + i);
        i += strnlen(data + i, len - i) + 1;
    }
    return out;
}

}  // namespace

// One MTA connection: what the callbacks see as SMFICTX.
struct smfi_str {
    void* priv = nullptr;
    unsigned long actions = 0, protocol = 0;  // as negotiated
    bool negotiating = false, in_eom = false, in_message = false;
    std::vector<std::pair<std::string, std::string>> macros[kStages];
    std::string symlists[kStages];
    std::string reply;  // smfi_setreply's text for the next 4xx/5xx answer
    std::string out;    // answers not written yet

    void packet(char cmd, std::string_view data = {}) {
        put32(out, static_cast<std::uint32_t>(data.size() + 1));
        out.push_back(cmd);
        out.append(data);
    }
    // A packet whose data is one NUL-terminated string.
    void string_packet(char cmd, const std::string& text) {
        packet(cmd, std::string_view(text.c_str(), text.size() + 1));
    }
    void clear_macros(int from) {
        for (int i = from; i < kStages; ++i) macros[i].clear();
    }
};

namespace {

// The answer to a step; none where the MTA does not wait for one.
void answer(SMFICTX* ctx, char cmd, sfsistat r) {
    if ((ctx->protocol & no_reply_bit(cmd)) != 0) return;
    switch (r) {
    case SMFIS_REJECT:
    case SMFIS_TEMPFAIL: {
        const char want = r == SMFIS_REJECT ? '5' : '4';
        if (!ctx->reply.empty() && ctx->reply[0] == want) {
            ctx->string_packet(SMFIR_REPLYCODE, ctx->reply);
        } else {
            ctx->packet(r == SMFIS_REJECT ? SMFIR_REJECT : SMFIR_TEMPFAIL);
        }
        break;
    }
    case SMFIS_DISCARD: ctx->packet(SMFIR_DISCARD); break;
    case SMFIS_ACCEPT: ctx->packet(SMFIR_ACCEPT); break;
    case SMFIS_SKIP: ctx->packet(SMFIR_SKIP); break;
    default: ctx->packet(SMFIR_CONTINUE); break;  // SMFIS_CONTINUE, and NOREPLY where an answer is due
    }
    ctx->reply.clear();
}

bool negotiate(SMFICTX* ctx, const char* data, std::size_t len) {
    if (len < 12) return false;
    const std::uint32_t version = get32(data), offered_actions = get32(data + 4), offered = get32(data + 8);
    unsigned long f0 = g_desc.xxfi_flags, f1 = 0, f2 = 0, f3 = 0;
    if (g_desc.xxfi_negotiate) {
        ctx->negotiating = true;
        sfsistat r = g_desc.xxfi_negotiate(ctx, offered_actions, offered, 0, 0, &f0, &f1, &f2, &f3);
        ctx->negotiating = false;
        if (r == SMFIS_ALL_OPTS) f0 = offered_actions, f1 = offered;
        else if (r != SMFIS_CONTINUE) return false;
    }
    if ((f0 & ~offered_actions) || (f1 & ~offered)) return false;  // more than the MTA can do
    ctx->actions = f0;
    ctx->protocol = f1;
    std::string r;
    put32(r, std::min(version, kProtocolVersion));
    put32(r, static_cast<std::uint32_t>(f0));
    put32(r, static_cast<std::uint32_t>(f1));
    if (f0 & SMFIF_SETSYMLIST)
        for (int stage = 0; stage < kStages; ++stage) {
            if (ctx->symlists[stage].empty()) continue;
            put32(r, static_cast<std::uint32_t>(stage));
            r.append(ctx->symlists[stage]).push_back('\0');
        }
    ctx->packet(SMFIC_OPTNEG, r);
    return true;
}

// The client's address as libmilter gives it: IPv4, IPv6 or a unix socket; null when unknown.
const sockaddr* client_address(char family, const char* data, std::size_t len, sockaddr_storage& ss) {
    if (family == SMFIA_UNKNOWN || len < 2) return nullptr;
    std::uint16_t port;
    std::memcpy(&port, data, 2);
    std::string addr(data + 2, strnlen(data + 2, len - 2));
    std::memset(&ss, 0, sizeof ss);
    if (family == SMFIA_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        in->sin_port = port;
        if (inet_pton(AF_INET, addr.c_str(), &in->sin_addr) != 1) return nullptr;
    } else if (family == SMFIA_INET6) {
        if (addr.starts_with("IPv6:")) addr.erase(0, 5);
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = port;
        if (inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) != 1) return nullptr;
    } else if (family == SMFIA_UNIX) {
        auto* un = reinterpret_cast<sockaddr_un*>(&ss);
        un->sun_family = AF_UNIX;
        std::strncpy(un->sun_path, addr.c_str(), sizeof un->sun_path - 1);
    } else {
        return nullptr;
    }
    return reinterpret_cast<const sockaddr*>(&ss);
}

void close_session(SMFICTX* ctx) {
    if (ctx->in_message && g_desc.xxfi_abort) g_desc.xxfi_abort(ctx);
    if (g_desc.xxfi_close) g_desc.xxfi_close(ctx);
    ctx->in_message = false;
    ctx->priv = nullptr;
    ctx->clear_macros(0);
}

// Runs one packet; false ends the connection.
bool command(SMFICTX* ctx, char cmd, char* data, std::size_t len) {
    sfsistat r = SMFIS_CONTINUE;
    switch (cmd) {
    case SMFIC_OPTNEG: return negotiate(ctx, data, len);
    case SMFIC_MACRO: {
        if (len < 1) return true;
        int stage = stage_of(data[0]);
        if (stage < 0) return true;
        auto& m = ctx->macros[stage];
        m.clear();
        auto s = strings_of(data + 1, len - 1);
        for (std::size_t i = 0; i + 1 < s.size(); i += 2) m.emplace_back(s[i], s[i + 1]);
        return true;
    }
    case SMFIC_CONNECT: {
        std::size_t host = strnlen(data, len);
        sockaddr_storage ss;
        const sockaddr* addr = host + 1 < len ? client_address(data[host + 1], data + host + 2, len - host - 2, ss) : nullptr;
        if (g_desc.xxfi_connect) r = g_desc.xxfi_connect(ctx, data, const_cast<sockaddr*>(addr));
        break;
    }
    case SMFIC_HELO:
        if (g_desc.xxfi_helo) r = g_desc.xxfi_helo(ctx, data);
        break;
    case SMFIC_MAIL: {
        ctx->clear_macros(SMFIM_ENVRCPT);  // the last message's
        ctx->in_message = true;
        auto argv = strings_of(data, len);
        if (argv.empty()) return false;  // no address: not the milter protocol
        argv.push_back(nullptr);
        if (g_desc.xxfi_envfrom) r = g_desc.xxfi_envfrom(ctx, argv.data());
        break;
    }
    case SMFIC_RCPT: {
        auto argv = strings_of(data, len);
        if (argv.empty()) return false;
        argv.push_back(nullptr);
        if (g_desc.xxfi_envrcpt) r = g_desc.xxfi_envrcpt(ctx, argv.data());
        break;
    }
    case SMFIC_DATA:
        if (g_desc.xxfi_data) r = g_desc.xxfi_data(ctx);
        break;
    case SMFIC_HEADER: {
        auto s = strings_of(data, len);
        if (s.size() < 2) return false;  // a name without a value
        if (g_desc.xxfi_header) r = g_desc.xxfi_header(ctx, s[0], s[1]);
        break;
    }
    case SMFIC_EOH:
        if (g_desc.xxfi_eoh) r = g_desc.xxfi_eoh(ctx);
        break;
    case SMFIC_BODY:
        if (g_desc.xxfi_body) r = g_desc.xxfi_body(ctx, reinterpret_cast<unsigned char*>(data), len);
        break;
    case SMFIC_BODYEOB:
        if (len > 0 && g_desc.xxfi_body) r = g_desc.xxfi_body(ctx, reinterpret_cast<unsigned char*>(data), len);
        if ((r == SMFIS_CONTINUE || r == SMFIS_NOREPLY) && g_desc.xxfi_eom) {
            ctx->in_eom = true;
            r = g_desc.xxfi_eom(ctx);
            ctx->in_eom = false;
        }
        ctx->in_message = false;
        break;
    case SMFIC_UNKNOWN:
        if (g_desc.xxfi_unknown) r = g_desc.xxfi_unknown(ctx, data);
        break;
    case SMFIC_ABORT:
        if (g_desc.xxfi_abort) g_desc.xxfi_abort(ctx);
        ctx->in_message = false;
        ctx->clear_macros(SMFIM_ENVFROM);
        return true;
    case SMFIC_QUIT_NC:  // the MTA's next connection follows on this socket
        close_session(ctx);
        return true;
    case SMFIC_QUIT: return false;
    default: return false;  // not the milter protocol
    }
    answer(ctx, cmd, r);
    return true;
}

bool write_all(int fd, const std::string& s) {
    for (std::size_t done = 0; done < s.size();) {
        ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

namespace mxlane::milter::engine {

void serve(int fd) {
    timeval tv{kReadTimeoutSeconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SMFICTX ctx;
    // The thread's buffer from its last connection: a new one would be zeroed for each.
    thread_local std::vector<char> in(64 * 1024);
    std::size_t used = 0;
    bool open = true;
    while (open) {
        if (in.size() - used < 16 * 1024) in.resize(in.size() * 2);
        ssize_t n = ::read(fd, in.data() + used, in.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += static_cast<std::size_t>(n);
        std::size_t pos = 0;
        while (open && used - pos >= 5) {
            std::uint32_t len = get32(in.data() + pos);
            if (len == 0 || len > kMaxPacket) {
                open = false;
                break;
            }
            if (used - pos - 4 < len) {
                if (in.size() < len + 4) in.resize(len + 4 + 16 * 1024);
                break;
            }
            open = command(&ctx, in[pos + 4], in.data() + pos + 5, len - 1);
            pos += 4 + len;
        }
        if (!ctx.out.empty() && !write_all(fd, ctx.out)) open = false;
        ctx.out.clear();
        std::memmove(in.data(), in.data() + pos, used - pos);
        used -= pos;
    }
    close_session(&ctx);
    ::close(fd);
    if (in.size() > kKeptBuffer) std::vector<char>(64 * 1024).swap(in);  // a huge packet's room goes back
}

}  // namespace mxlane::milter::engine

int smfi_register(struct smfiDesc desc) {
    g_desc = desc;
    return MI_SUCCESS;
}

void* smfi_getpriv(SMFICTX* ctx) { return ctx ? ctx->priv : nullptr; }

int smfi_setpriv(SMFICTX* ctx, void* priv) {
    if (!ctx) return MI_FAILURE;
    ctx->priv = priv;
    return MI_SUCCESS;
}

char* smfi_getsymval(SMFICTX* ctx, char* name) {
    if (!ctx || !name) return nullptr;
    std::string_view want = unbraced(name);
    for (auto& stage : ctx->macros)
        for (auto& [k, v] : stage)
            if (unbraced(k) == want) return v.data();
    return nullptr;
}

int smfi_setsymlist(SMFICTX* ctx, int where, char* macros) {
    if (!ctx || !ctx->negotiating || where < 0 || where >= kStages || !macros) return MI_FAILURE;
    ctx->symlists[where] = macros;
    return MI_SUCCESS;
}

int smfi_setreply(SMFICTX* ctx, char* rcode, char* xcode, char* message) {
    if (!ctx || !rcode || std::strlen(rcode) != 3 || (rcode[0] != '4' && rcode[0] != '5')) return MI_FAILURE;
    std::string text = rcode;
    if (xcode && *xcode) text.append(" ").append(xcode);
    if (message && *message) text.append(" ").append(message);
    if (text.find_first_of("\r\n") != std::string::npos) return MI_FAILURE;
    ctx->reply = std::move(text);
    return MI_SUCCESS;
}

int smfi_quarantine(SMFICTX* ctx, char* reason) {
    if (!ctx || !ctx->in_eom || !(ctx->actions & SMFIF_QUARANTINE) || !reason || !*reason) return MI_FAILURE;
    ctx->string_packet(SMFIR_QUARANTINE, reason);
    return MI_SUCCESS;
}
