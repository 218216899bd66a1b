// milter_floor: the cheapest filter libmilter allows that still sees a whole message, for
// bench/intake.sh. It asks for the same macros as mxlane-milter and for as few answers as it
// can (none before end of headers, which mxlane answers when the header rule is on; body
// chunks and end of message), keeps the envelope, header fields and body in memory, stores
// nothing (but see -s) and discards every message at the end: its rate is what any libmilter
// filter that takes messages over can reach on this host, against which mxlane-milter's own
// cost shows.
// With -s FILE it is the durable floor: before it answers end of message it writes the
// message to FILE (zero-filled beforehand, so a write changes no file system metadata) and
// flushes it to the disk, one fdatasync shared by every message written before it began: the
// least any filter that keeps its promise "answered only when on disk" can cost.
//
//   milter_floor -p unix:/path/to/socket [-s FILE]
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <mutex>
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

// The durable floor's file: each message is written at the next offset (wrapping round at
// its end) and flushed before it is answered; a flush covers every write before it began.
struct Spool {
    static constexpr off_t size = 64 << 20;
    int fd = -1;
    std::mutex lock;
    std::condition_variable flushed;
    off_t next = 0;          // where the next message goes
    uint64_t written = 0;    // messages written so far (their pwrite done)
    uint64_t synced = 0;     // of them, on the disk
    bool flushing = false;

    bool open(const char* path) {
        fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return false;
        std::string zeros(1 << 20, '\0');
        for (off_t at = 0; at < size; at += off_t(zeros.size()))
            if (pwrite(fd, zeros.data(), zeros.size(), at) != ssize_t(zeros.size())) return false;
        return fsync(fd) == 0;
    }

    bool keep(const std::string& envelope, const std::string& content) {
        std::unique_lock<std::mutex> l(lock);
        off_t need = off_t(envelope.size() + content.size());
        if (next + need > size) next = 0;
        off_t at = next;
        next += need;
        l.unlock();
        if (pwrite(fd, envelope.data(), envelope.size(), at) != ssize_t(envelope.size()) ||
            pwrite(fd, content.data(), content.size(), at + off_t(envelope.size())) != ssize_t(content.size()))
            return false;
        l.lock();
        uint64_t mine = ++written;  // counted once written: a flush that began after covers it
        while (synced < mine) {
            if (flushing) {
                flushed.wait(l);
                continue;
            }
            flushing = true;
            uint64_t upto = written;
            l.unlock();
            bool ok = fdatasync(fd) == 0;
            l.lock();
            flushing = false;
            if (ok) synced = std::max(synced, upto);
            flushed.notify_all();
            if (!ok) return false;
        }
        return true;
    }
};

Spool* spool;  // set by -s: the durable floor

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

sfsistat on_eom(SMFICTX* ctx) {
    if (spool && !spool->keep(message(ctx)->envelope, message(ctx)->content)) return SMFIS_TEMPFAIL;
    return SMFIS_DISCARD;
}

sfsistat on_close(SMFICTX* ctx) {
    delete static_cast<Message*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

int main(int argc, char** argv) {
    const char* socket = nullptr;
    const char* file = nullptr;
    for (int opt; (opt = getopt(argc, argv, "p:s:")) != -1;) {
        if (opt == 'p') socket = optarg;
        if (opt == 's') file = optarg;
    }
    if (!socket) {
        std::fprintf(stderr, "usage: milter_floor -p SOCKET [-s FILE]\n");
        return 2;
    }
    if (file) {
        spool = new Spool;
        if (!spool->open(file)) {
            std::fprintf(stderr, "milter_floor: cannot prepare %s: %s\n", file, std::strerror(errno));
            return 1;
        }
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
