// milter_floor: the cheapest filter libmilter allows that still sees a whole message, for
// bench/intake.sh. It asks for the same macros as mxlane-milter and for as few answers as it
// can (none before end of headers, which mxlane answers when the header rule is on; body
// chunks and end of message), keeps the envelope, header fields and body in memory, stores
// nothing and discards every message at the end: its rate is what any libmilter filter that
// takes messages over can reach on this host, against which mxlane-milter's own cost shows.
//
//   milter_floor -p unix:/path/to/socket
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {

struct Message {
    std::string envelope, content;
};

Message* message(SMFICTX* ctx) {
    auto* m = static_cast<Message*>(smfi_getpriv(ctx));
    if (!m) {
        m = new Message;
        smfi_setpriv(ctx, m);
    }
    return m;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    *pf0 = 0;
    *pf1 = f1 & (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC | SMFIP_NODATA |
                 SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR);
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) {
        *pf0 |= SMFIF_SETSYMLIST;
        smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen}"));
        for (int stage : {SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOH, SMFIM_EOM})
            smfi_setsymlist(ctx, stage, const_cast<char*>("{mxlane_none}"));
    }
    return SMFIS_CONTINUE;
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    Message* m = message(ctx);
    m->envelope.assign(argv[0]);
    m->content.clear();
    return SMFIS_NOREPLY;
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    message(ctx)->envelope.append(argv[0]).push_back('\n');
    return SMFIS_NOREPLY;
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    message(ctx)->content.append(name).append(":").append(value).append("\r\n");
    return SMFIS_NOREPLY;
}

sfsistat on_eoh(SMFICTX*) { return SMFIS_CONTINUE; }

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    message(ctx)->content.append(reinterpret_cast<const char*>(chunk), len);
    return SMFIS_CONTINUE;
}

sfsistat on_eom(SMFICTX*) { return SMFIS_DISCARD; }

sfsistat on_close(SMFICTX* ctx) {
    delete static_cast<Message*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

int main(int argc, char** argv) {
    const char* socket = nullptr;
    for (int opt; (opt = getopt(argc, argv, "p:")) != -1;)
        if (opt == 'p') socket = optarg;
    if (!socket) {
        std::fprintf(stderr, "usage: milter_floor -p SOCKET\n");
        return 2;
    }
    smfiDesc d{};
    d.xxfi_name = const_cast<char*>("mxlane-floor");
    d.xxfi_version = SMFI_VERSION;
    d.xxfi_envfrom = on_envfrom;
    d.xxfi_envrcpt = on_envrcpt;
    d.xxfi_header = on_header;
    d.xxfi_eoh = on_eoh;
    d.xxfi_body = on_body;
    d.xxfi_eom = on_eom;
    d.xxfi_close = on_close;
    d.xxfi_negotiate = on_negotiate;
    if (smfi_register(d) != MI_SUCCESS || smfi_setconn(const_cast<char*>(socket)) != MI_SUCCESS ||
        smfi_opensocket(true) != MI_SUCCESS) {
        std::fprintf(stderr, "milter_floor: cannot listen on %s\n", socket);
        return 1;
    }
    smfi_setbacklog(128);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
