// resolver: the c-ares channel, its sockets and timer on an asio strand, and raw answers with TTLs.
#include "qrunner/dns/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace mxlane::dns {

namespace asio = boost::asio;
using boost::system::error_code;

// ---- answers -------------------------------------------------------------

namespace {

// Reads a DNS message just far enough for TTLs. Every read is bounds-checked:
// the packet may be anything a server (or an attacker) sent.
class MessageReader {
public:
    explicit MessageReader(const std::vector<unsigned char>& packet) : p_(packet) {}

    bool ok() const { return ok_; }
    std::uint16_t u16() {
        if (!need(2)) return 0;
        std::uint16_t v = static_cast<std::uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
        pos_ += 2;
        return v;
    }
    std::uint32_t u32() {
        std::uint32_t hi = u16();
        return hi << 16 | u16();
    }
    void skip(std::size_t n) {
        if (need(n)) pos_ += n;
    }
    // A name ends at a zero label or at a compression pointer (RFC 1035 4.1.4).
    void skip_name() {
        for (int labels = 0; ok_ && labels < 128; ++labels) {
            if (!need(1)) return;
            unsigned len = p_[pos_];
            if (len == 0) { pos_ += 1; return; }
            if ((len & 0xC0) == 0xC0) { skip(2); return; }
            if (len & 0xC0) break;
            skip(1 + len);
        }
        ok_ = false;
    }
    struct Record {
        std::uint16_t type = 0;
        std::uint32_t ttl = 0;
        std::size_t rdata = 0, rdlength = 0;
    };
    Record record() {
        Record r;
        skip_name();
        r.type = u16();
        skip(2);  // class
        r.ttl = u32();
        r.rdlength = u16();
        r.rdata = pos_;
        skip(r.rdlength);
        return r;
    }
    void seek(std::size_t pos) { pos_ = pos; }

private:
    bool need(std::size_t n) {
        if (ok_ && pos_ + n <= p_.size()) return true;
        ok_ = false;
        return false;
    }
    const std::vector<unsigned char>& p_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

struct Sections {
    std::uint16_t questions = 0, answers = 0, authority = 0;
};

// Positions the reader after the question section.
Sections skip_header_and_questions(MessageReader& in) {
    Sections s;
    in.skip(4);  // id, flags
    s.questions = in.u16();
    s.answers = in.u16();
    s.authority = in.u16();
    in.skip(2);  // additional
    for (unsigned i = 0; i < s.questions && in.ok(); ++i) {
        in.skip_name();
        in.skip(4);
    }
    return s;
}

}  // namespace

std::optional<std::uint32_t> Answer::min_ttl() const {
    MessageReader in(packet);
    Sections s = skip_header_and_questions(in);
    std::optional<std::uint32_t> ttl;
    for (unsigned i = 0; i < s.answers && in.ok(); ++i) {
        std::uint32_t t = in.record().ttl;
        if (in.ok()) ttl = std::min(ttl.value_or(t), t);
    }
    if (!in.ok()) return std::nullopt;
    return ttl;
}

std::optional<std::uint32_t> Answer::negative_ttl() const {
    MessageReader in(packet);
    Sections s = skip_header_and_questions(in);
    for (unsigned i = 0; i < s.answers && in.ok(); ++i) in.record();
    for (unsigned i = 0; i < s.authority && in.ok(); ++i) {
        MessageReader::Record r = in.record();
        if (!in.ok() || r.type != ns_t_soa) continue;
        std::size_t next = r.rdata + r.rdlength;
        in.seek(r.rdata);
        in.skip_name();  // MNAME
        in.skip_name();  // RNAME
        in.skip(16);     // SERIAL REFRESH RETRY EXPIRE
        std::uint32_t minimum = in.u32();
        if (!in.ok()) return std::nullopt;
        in.seek(next);
        return std::min(r.ttl, minimum);
    }
    return std::nullopt;
}

// ---- the channel ---------------------------------------------------------

namespace {

// The answers of one query() call; it completes when the last one is in.
class Batch {
public:
    explicit Batch(std::size_t n) : answers(n) {}
    virtual ~Batch() = default;
    virtual void complete() = 0;  // hands the answers to the waiting coroutine

    std::vector<Answer> answers;
    std::size_t pending = 0;
};

template <class Handler>
class BatchOf final : public Batch {
public:
    BatchOf(std::size_t n, Handler handler, asio::io_context::executor_type io_executor)
        : Batch(n),
          handler_(std::move(handler)),
          work_(asio::get_associated_executor(handler_, io_executor)) {}

    // Posted, never run inline: the caller is inside ares_process_fd, and the
    // coroutine must resume on its own executor, not on the channel's strand.
    void complete() override {
        auto executor = work_.get_executor();
        asio::post(executor, [h = std::move(handler_), a = std::move(answers)]() mutable {
            std::move(h)(std::move(a));
        });
        work_.reset();
    }

private:
    Handler handler_;
    asio::executor_work_guard<asio::associated_executor_t<Handler, asio::io_context::executor_type>>
        work_;
};

void init_library_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
    });
}

}  // namespace

class Resolver::Channel : public std::enable_shared_from_this<Channel> {
public:
    using Strand = asio::strand<asio::io_context::executor_type>;

    Channel(asio::io_context& io, const std::string& servers, std::chrono::milliseconds timeout, int tries);
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    Strand& strand() { return strand_; }
    asio::io_context::executor_type io_executor() { return io_.get_executor(); }
    void submit(const std::vector<Question>& questions, std::unique_ptr<Batch> batch);  // on the strand
    void close();                                                                      // on the strand

private:
    // One socket c-ares asked us to watch. Waits in flight hold a reference,
    // so a Watch outlives its release; `active` tells them it is gone.
    struct Watch {
        Watch(asio::io_context& io, int fd) : fd(fd), descriptor(io) {}
        int fd;
        asio::posix::stream_descriptor descriptor;
        bool want_read = false, want_write = false;
        bool reading = false, writing = false;
        bool active = true;
    };
    struct Slot {  // the c-ares callback argument of one question
        Channel* channel;
        Batch* batch;
        std::size_t index;
    };

    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
    static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
    void watch(int fd, bool read, bool write);
    void forget(Watch& watch);
    void finish_one(Batch* batch);
    void arm(const std::shared_ptr<Watch>& watch);
    void on_ready(const std::shared_ptr<Watch>& watch, bool read, error_code ec);
    void pump();
    void arm_timer();

    asio::io_context& io_;
    Strand strand_;
    asio::steady_timer timer_;
    bool timer_armed_ = false;
    ares_channel channel_ = nullptr;
    std::unordered_map<int, std::shared_ptr<Watch>> watches_;
    bool closed_ = false;
    bool destroying_ = false;
};

Resolver::Channel::Channel(asio::io_context& io, const std::string& servers,
                           std::chrono::milliseconds timeout, int tries)
    : io_(io), strand_(asio::make_strand(io)), timer_(io) {
    init_library_once();
    ares_options options{};
    options.timeout = static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, timeout.count()));
    options.tries = std::max(1, tries);
    // Names are fully qualified mail domains: no search list, and never /etc/hosts.
    options.flags = ARES_FLAG_NOSEARCH;
    options.lookups = const_cast<char*>("b");
    options.sock_state_cb = &Channel::on_sock_state;
    options.sock_state_cb_data = this;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_LOOKUPS |
               ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&channel_, &options, mask);
    if (rc != ARES_SUCCESS) throw std::runtime_error(std::string("c-ares init: ") + ares_strerror(rc));
    if (!servers.empty() && (rc = ares_set_servers_ports_csv(channel_, servers.c_str())) != ARES_SUCCESS) {
        ares_destroy(channel_);
        throw std::invalid_argument("dns_servers: bad server list \"" + servers + "\": " + ares_strerror(rc));
    }
}

Resolver::Channel::~Channel() {
    // Queries still pending end with ARES_EDESTRUCTION; nobody is left to
    // resume, so finish_one drops their handlers.
    destroying_ = true;
    for (auto& [fd, w] : watches_) forget(*w);
    watches_.clear();
    ares_destroy(channel_);
}

void Resolver::Channel::submit(const std::vector<Question>& questions, std::unique_ptr<Batch> batch) {
    Batch* b = batch.release();
    // One extra count for this loop: c-ares may answer synchronously (a bad
    // name, no servers), and the batch must not complete before all are asked.
    b->pending = questions.size() + 1;
    for (std::size_t i = 0; i < questions.size(); ++i) {
        if (closed_) {
            b->answers[i].status = ARES_ECANCELLED;
            finish_one(b);
            continue;
        }
        ares_query(channel_, questions[i].name.c_str(), ns_c_in, questions[i].type, &Channel::on_answer,
                   new Slot{this, b, i});
    }
    finish_one(b);
    pump();
}

void Resolver::Channel::close() {
    if (closed_) return;
    closed_ = true;
    ares_cancel(channel_);  // pending queries end with ARES_ECANCELLED
    timer_.cancel();
    timer_armed_ = false;
    for (auto& [fd, w] : watches_) forget(*w);
    watches_.clear();
}

void Resolver::Channel::on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<Slot> slot(static_cast<Slot*>(arg));
    Answer& answer = slot->batch->answers[slot->index];
    answer.status = status;
    if (abuf && alen > 0) answer.packet.assign(abuf, abuf + alen);
    slot->channel->finish_one(slot->batch);
}

void Resolver::Channel::finish_one(Batch* batch) {
    if (--batch->pending > 0) return;
    std::unique_ptr<Batch> owner(batch);
    if (!destroying_) batch->complete();
}

void Resolver::Channel::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Channel*>(data)->watch(fd, readable != 0, writable != 0);
}

// Called from inside c-ares. Waits are started later, by pump(), once c-ares
// has returned.
void Resolver::Channel::watch(int fd, bool read, bool write) {
    auto it = watches_.find(fd);
    if (!read && !write) {
        if (it != watches_.end()) {
            forget(*it->second);
            watches_.erase(it);
        }
        return;
    }
    if (it == watches_.end()) {
        auto w = std::make_shared<Watch>(io_, fd);
        error_code ec;
        w->descriptor.assign(fd, ec);
        if (ec) return;  // unwatchable: c-ares times the query out and reports it
        it = watches_.emplace(fd, std::move(w)).first;
    }
    it->second->want_read = read;
    it->second->want_write = write;
}

// c-ares closes its own sockets: release(), never close(). Waits in flight
// finish with operation_aborted.
void Resolver::Channel::forget(Watch& watch) {
    watch.active = false;
    watch.descriptor.release();
}

void Resolver::Channel::arm(const std::shared_ptr<Watch>& w) {
    auto wait = [&](asio::posix::descriptor_base::wait_type type, bool read) {
        w->descriptor.async_wait(type, asio::bind_executor(strand_, [self = shared_from_this(), w, read](error_code ec) {
                                     self->on_ready(w, read, ec);
                                 }));
    };
    if (w->want_read && !w->reading) {
        w->reading = true;
        wait(asio::posix::descriptor_base::wait_read, true);
    }
    if (w->want_write && !w->writing) {
        w->writing = true;
        wait(asio::posix::descriptor_base::wait_write, false);
    }
}

void Resolver::Channel::on_ready(const std::shared_ptr<Watch>& w, bool read, error_code ec) {
    (read ? w->reading : w->writing) = false;
    if (ec || !w->active || closed_) return;
    ares_process_fd(channel_, read ? w->fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : w->fd);
    pump();
}

// Asio's epoll reactor is edge-triggered and a wait only sees edges that come
// after it is queued, while c-ares 1.18 may leave data unread (a TCP answer
// takes two calls: the length, then the body). So after arming the waits we
// ask poll() what is ready now and hand that to c-ares at once. An edge that
// also completes a wait later only costs one empty ares_process_fd.
void Resolver::Channel::pump() {
    std::vector<pollfd> ready;
    for (int round = 0; round < 32 && !closed_; ++round) {
        ready.clear();
        for (auto& [fd, w] : watches_) {
            arm(w);
            short events = static_cast<short>((w->want_read ? POLLIN : 0) | (w->want_write ? POLLOUT : 0));
            ready.push_back(pollfd{fd, events, 0});
        }
        if (ready.empty() || ::poll(ready.data(), ready.size(), 0) <= 0) break;
        for (const pollfd& p : ready) {
            bool error = p.revents & (POLLERR | POLLHUP | POLLNVAL);
            bool readable = (p.revents & POLLIN) || (error && (p.events & POLLIN));
            bool writable = (p.revents & POLLOUT) || (error && (p.events & POLLOUT));
            if (readable || writable)
                ares_process_fd(channel_, readable ? p.fd : ARES_SOCKET_BAD, writable ? p.fd : ARES_SOCKET_BAD);
        }
    }
    arm_timer();
}

// One timer for all queries, at c-ares's next deadline (retries, timeouts).
// A timer already due earlier is left alone: waking early costs one call.
void Resolver::Channel::arm_timer() {
    timeval tv{};
    if (closed_ || !ares_timeout(channel_, nullptr, &tv)) {
        if (timer_armed_) timer_.cancel();
        timer_armed_ = false;
        return;
    }
    auto deadline = asio::steady_timer::clock_type::now() + std::chrono::seconds(tv.tv_sec) +
                    std::chrono::microseconds(tv.tv_usec);
    if (timer_armed_ && timer_.expiry() <= deadline) return;
    timer_armed_ = true;
    timer_.expires_at(deadline);
    timer_.async_wait(asio::bind_executor(strand_, [self = shared_from_this()](error_code ec) {
        if (ec == asio::error::operation_aborted || self->closed_) return;
        self->timer_armed_ = false;
        ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // expire timed-out tries
        self->pump();
    }));
}

// ---- the resolver --------------------------------------------------------

namespace {

// "127.0.0.1:5353, [::1]:53" items -> the csv c-ares takes, without blanks.
std::string server_csv(const std::vector<std::string>& servers) {
    std::string csv;
    for (const std::string& item : servers) {
        std::string::size_type start = 0;
        while (start <= item.size()) {
            auto end = item.find(',', start);
            if (end == std::string::npos) end = item.size();
            std::string part = item.substr(start, end - start);
            part.erase(std::remove_if(part.begin(), part.end(), [](unsigned char c) { return std::isspace(c); }),
                       part.end());
            if (!part.empty()) csv += (csv.empty() ? "" : ",") + part;
            start = end + 1;
        }
    }
    return csv;
}

}  // namespace

Resolver::Resolver(asio::io_context& io, const std::vector<std::string>& servers,
                   std::chrono::milliseconds timeout, int tries)
    : io_(io), channel_(std::make_shared<Channel>(io, server_csv(servers), timeout, tries)) {}

Resolver::~Resolver() {
    // Once run() has returned nothing runs on the strand, and the channel can
    // be closed here; else the close is queued to the strand like any call.
    if (io_.stopped())
        channel_->close();
    else
        shutdown();
}

void Resolver::shutdown() {
    asio::dispatch(channel_->strand(), [channel = channel_] { channel->close(); });
}

asio::awaitable<std::vector<Answer>> Resolver::query(std::vector<Question> questions) {
    // A weak reference: this lambda lives in the coroutine frame while the
    // batch (inside c-ares) holds the coroutine, and a strong one would make
    // a cycle that an io_context destroyed mid-lookup never breaks.
    auto initiate = [weak = std::weak_ptr<Channel>(channel_)](auto handler, std::vector<Question> qs) {
        using Handler = decltype(handler);
        auto channel = weak.lock();  // the Resolver, and so the channel, is alive while we are called
        auto batch = std::make_unique<BatchOf<Handler>>(qs.size(), std::move(handler), channel->io_executor());
        asio::post(channel->strand(), [channel, batch = std::move(batch), qs = std::move(qs)]() mutable {
            channel->submit(qs, std::move(batch));
        });
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<Answer>)>(
        initiate, asio::use_awaitable, std::move(questions));
}

}  // namespace mxlane::dns
