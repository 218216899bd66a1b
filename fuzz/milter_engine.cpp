// fuzz target milter_engine: any bytes an MTA (or whatever reaches the milter socket) sends
// are taken by mxlane's own milter engine without crashing or reading past a packet: it
// answers in packets of its own, or drops the connection.
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>

#include "milter/engine.hpp"

namespace {

// Callbacks that use every call the engine offers a filter.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    *pf0 = f0 & (SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
    *pf1 = f1 & (SMFIP_NR_CONN | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC);
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen}"));
    return SMFIS_CONTINUE;
}

std::string* message(SMFICTX* ctx) { return static_cast<std::string*>(smfi_getpriv(ctx)); }

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
    delete message(ctx);  // a second CONNECT on one connection
    smfi_setpriv(ctx, new std::string);
    return SMFIS_NOREPLY;
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
    if (auto* m = message(ctx)) m->assign(argv[0] ? argv[0] : "").append(qid ? qid : "");
    if (argv[0] && argv[1]) {
        smfi_setreply(ctx, const_cast<char*>("550"), const_cast<char*>("5.7.1"), argv[1]);
        return SMFIS_REJECT;
    }
    return SMFIS_CONTINUE;
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    if (auto* m = message(ctx)) m->append(name).append(value);
    return SMFIS_NOREPLY;
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, std::size_t len) {
    if (auto* m = message(ctx)) m->append(reinterpret_cast<const char*>(chunk), len);
    return SMFIS_NOREPLY;
}

sfsistat on_eom(SMFICTX* ctx) {
    smfi_quarantine(ctx, const_cast<char*>("fuzz"));
    return message(ctx) && message(ctx)->size() % 2 ? SMFIS_DISCARD : SMFIS_TEMPFAIL;
}

sfsistat on_close(SMFICTX* ctx) {
    delete message(ctx);
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool registered = [] {
        smfiDesc d{};
        d.xxfi_name = const_cast<char*>("fuzz");
        d.xxfi_version = SMFI_VERSION;
        d.xxfi_flags = SMFIF_QUARANTINE;
        d.xxfi_negotiate = on_negotiate;
        d.xxfi_connect = on_connect;
        d.xxfi_envfrom = on_envfrom;
        d.xxfi_header = on_header;
        d.xxfi_body = on_body;
        d.xxfi_eom = on_eom;
        d.xxfi_close = on_close;
        return smfi_register(d) == MI_SUCCESS;
    }();
    if (!registered || size > (1 << 16)) return 0;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    // The MTA's side: sends the input, then reads the answers until the engine closes.
    std::thread mta([fd = sv[0], data, size] {
        for (std::size_t done = 0; done < size;) {
            ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        ::shutdown(fd, SHUT_WR);
        char buf[4096];
        while (::read(fd, buf, sizeof buf) > 0) {
        }
        ::close(fd);
    });
    mxlane::milter::engine::serve(sv[1]);
    mta.join();
    return 0;
}
