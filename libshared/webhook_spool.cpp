// webhook_spool: event_webhook's durable queue, the spool of event lines in queue_directory and the sender's offset in it.
#include "libshared/webhook_spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mxlane {

std::string format_position(const SpoolPosition& p) {
    return std::to_string(p.inode) + " " + std::to_string(p.offset) + "\n";
}

std::optional<SpoolPosition> parse_position(std::string_view text) {
    SpoolPosition p;
    const char* end = text.data() + text.size();
    auto [a, ea] = std::from_chars(text.data(), end, p.inode);
    if (ea != std::errc() || a == end || *a != ' ') return std::nullopt;
    auto [b, eb] = std::from_chars(a + 1, end, p.offset);
    if (eb != std::errc() || b == a + 1) return std::nullopt;
    if (b != end && !(b + 1 == end && *b == '\n')) return std::nullopt;
    return p;
}

std::size_t take_lines(std::string_view text, std::size_t max_events, std::size_t max_bytes, std::size_t& events) {
    events = 0;
    std::size_t taken = 0;
    while (events < max_events) {
        const auto nl = text.find('\n', taken);
        if (nl == std::string_view::npos) break;
        if (events > 0 && nl + 1 > max_bytes) break;
        taken = nl + 1;
        ++events;
    }
    return taken;
}

std::string json_array(std::string_view lines) {
    std::string out = "[";
    out.reserve(lines.size() + 2);
    std::size_t at = 0;
    while (at < lines.size()) {
        auto nl = lines.find('\n', at);
        if (nl == std::string_view::npos) nl = lines.size();
        if (nl > at) {
            if (out.size() > 1) out += ',';
            out.append(lines.substr(at, nl - at));
        }
        at = nl + 1;
    }
    return out + "]";
}

namespace {

int open_spool(const std::string& path, int extra) {
    int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | extra, 0640);
    if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    return fd;
}

std::uint64_t inode_of(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    return static_cast<std::uint64_t>(st.st_ino);
}

bool write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

void append_to_spool(const std::string& queue_directory, const std::string& lines) {
    const std::string path = queue_directory + "/webhook.spool";
    for (int tries = 0; tries < 10; ++tries) {
        int fd = open_spool(path, 0);
        // The sender starts the spool afresh under this lock: the file opened
        // may be the one it has just renamed away, with nobody reading it on.
        while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
        }
        struct stat now {};
        const bool current = ::stat(path.c_str(), &now) == 0 && static_cast<std::uint64_t>(now.st_ino) == inode_of(fd, path);
        const bool ok = current && write_all(fd, lines);
        const int e = errno;
        ::close(fd);
        if (ok) return;
        if (current) throw std::runtime_error(path + ": " + std::strerror(e));
    }
    throw std::runtime_error(path + ": replaced again and again while appending");
}

WebhookSpool::WebhookSpool(const std::string& queue_directory, std::uint64_t restart_bytes)
    : spool_path_(queue_directory + "/webhook.spool"),
      offset_path_(queue_directory + "/webhook.offset"),
      restart_bytes_(restart_bytes) {
    fd_ = open_spool(spool_path_, 0);
    try {
        inode_ = inode_of(fd_, spool_path_);
        std::ifstream in(offset_path_);
        std::stringstream text;
        text << in.rdbuf();
        // Another inode: the spool was started afresh after this offset was
        // written (and before the new one was); all of it is unsent.
        if (auto p = parse_position(text.str()); p && p->inode == inode_ && p->offset <= size_locked())
            offset_ = p->offset;
        else if (in.is_open() && !text.str().empty() && !p)
            throw std::runtime_error(offset_path_ + ": not \"INODE OFFSET\"");
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

WebhookSpool::~WebhookSpool() {
    if (fd_ >= 0) ::close(fd_);
}

std::uint64_t WebhookSpool::size_locked() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.st_size);
}

void WebhookSpool::append(const std::string& lines) {
    std::lock_guard lock(mu_);
    write_all(fd_, lines);
}

std::optional<WebhookSpool::Batch> WebhookSpool::next() const {
    // fd_ changes only in acknowledge(), on the sender's side: reading needs no lock.
    const std::uint64_t from = offset_.load();
    const std::uint64_t waiting = backlog();
    if (waiting == 0) return std::nullopt;
    std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(waiting, kWebhookBatchBytes + 64 * 1024)), '\0');
    std::size_t have = 0;
    for (;;) {
        ssize_t n = ::pread(fd_, buffer.data() + have, buffer.size() - have, static_cast<off_t>(from + have));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(spool_path_ + ": " + std::strerror(errno));
        have += static_cast<std::size_t>(n);
        // A single line longer than the buffer (never an event's): read on.
        if (n > 0 && have == buffer.size() && std::string_view(buffer.data(), have).find('\n') == std::string_view::npos) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        break;
    }
    Batch b;
    const std::size_t taken =
        take_lines(std::string_view(buffer.data(), have), kWebhookBatchEvents, kWebhookBatchBytes, b.events);
    if (taken == 0) return std::nullopt;
    b.body = json_array(std::string_view(buffer.data(), taken));
    b.end = from + taken;
    // Cut by a bound (lines left in the buffer, or more than it holds): a full batch.
    b.full = taken < std::string_view(buffer.data(), have).rfind('\n') + 1 || have < waiting;
    return b;
}

void WebhookSpool::write_position(const SpoolPosition& p) const {
    const std::string temp = offset_path_ + ".new";
    const std::string text = format_position(p);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    int e = errno;
    if (fd >= 0 && ::close(fd) != 0 && ok) ok = false, e = errno;
    if (ok && std::rename(temp.c_str(), offset_path_.c_str()) != 0) ok = false, e = errno;
    if (!ok) throw std::runtime_error(offset_path_ + ": " + std::strerror(e));
}

void WebhookSpool::acknowledge(const Batch& b) {
    std::lock_guard lock(mu_);
    write_position({inode_, b.end});
    offset_ = b.end;
    // Under mu_, so no line comes between the size seen and the new file:
    // the new spool gets a new inode, and an offset file still naming the old
    // one (a stop between the rename and the position) means "from its start".
    if (b.end < restart_bytes_ || size_locked() != b.end) return;
    // And under the file's lock, so that no other process's line comes either
    // (append_to_spool); closing the old file lets it go.
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
    if (size_locked() != b.end) {
        ::flock(fd_, LOCK_UN);
        return;
    }
    const std::string temp = spool_path_ + ".new";
    int fd = open_spool(temp, O_TRUNC);
    if (std::rename(temp.c_str(), spool_path_.c_str()) != 0) {
        int e = errno;
        ::close(fd);
        ::flock(fd_, LOCK_UN);
        throw std::runtime_error(spool_path_ + ": " + std::strerror(e));
    }
    ::close(fd_);
    fd_ = fd;
    inode_ = inode_of(fd_, spool_path_);
    offset_ = 0;
    write_position({inode_, 0});
}

std::uint64_t WebhookSpool::backlog() const {
    std::lock_guard lock(mu_);
    const std::uint64_t size = size_locked(), at = offset_.load();
    return size > at ? size - at : 0;
}

}  // namespace mxlane
