// webhook_spool: event_webhook's durable queue, the spool of event lines in queue_directory and the sender's offset in it.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mxlane {

// A POST carries at most this many events and bytes of them; a batch that is
// not full waits until its first events are kWebhookBatchAgeMs old (as the
// sender saw them come).
constexpr std::size_t kWebhookBatchEvents = 500;
constexpr std::size_t kWebhookBatchBytes = 1024 * 1024;
constexpr int kWebhookBatchAgeMs = 1000;
// A spool all sent and bigger than this is started afresh.
constexpr std::uint64_t kWebhookSpoolRestart = 4 * 1024 * 1024;

// Where the sender is: the spool file (its inode: a spool started afresh has a
// new one) and the bytes of it the receiver acknowledged.
struct SpoolPosition {
    std::uint64_t inode = 0;
    std::uint64_t offset = 0;
};
std::string format_position(const SpoolPosition& p);                  // "INODE OFFSET\n"
std::optional<SpoolPosition> parse_position(std::string_view text);  // nullopt: not such a line

// The whole lines at the start of `text`: at most max_events of them and
// max_bytes (but one line at least, when text holds a whole one). Returns the
// bytes they take; `events` their count.
std::size_t take_lines(std::string_view text, std::size_t max_events, std::size_t max_bytes, std::size_t& events);
// Newline-ended JSON lines as one JSON array: "[line,line]".
std::string json_array(std::string_view lines);

// Appends event lines to queue_directory/webhook.spool from another process
// than the sender's (mxlane-milter): opened for this write only, under an
// exclusive flock(2), and again when the sender has started the spool afresh
// meanwhile. Throws std::runtime_error "PATH: reason".
void append_to_spool(const std::string& queue_directory, const std::string& lines);

// queue_directory/webhook.spool (event lines, appended by the qrunner, one
// write(2) per batch, O_APPEND, and by append_to_spool) and queue_directory/webhook.offset (the
// sender's SpoolPosition, written by temp file and rename after each batch the
// receiver acknowledged). append() and backlog() are thread-safe; next() and
// acknowledge() belong to the one sender.
class WebhookSpool {
public:
    // Opens (creates) both; throws std::runtime_error "PATH: reason".
    explicit WebhookSpool(const std::string& queue_directory, std::uint64_t restart_bytes = kWebhookSpoolRestart);
    ~WebhookSpool();
    WebhookSpool(const WebhookSpool&) = delete;
    WebhookSpool& operator=(const WebhookSpool&) = delete;

    void append(const std::string& lines);  // a full disk loses events, never deliveries
    struct Batch {
        std::string body;  // JSON array
        std::size_t events = 0;
        std::uint64_t end = 0;  // the offset after it
        bool full = false;      // cut by kWebhookBatchEvents or kWebhookBatchBytes: more lines wait
    };
    // The next batch from the offset (whole lines only); nullopt when all is sent.
    // Throws std::runtime_error when the spool cannot be read.
    std::optional<Batch> next() const;
    // The receiver took `b`: the offset moves past it (durably), and a spool
    // all sent and bigger than restart_bytes starts afresh. Throws std::runtime_error.
    void acknowledge(const Batch& b);
    std::uint64_t backlog() const;  // bytes not yet acknowledged
    std::uint64_t offset() const { return offset_.load(); }

private:
    void write_position(const SpoolPosition& p) const;
    std::uint64_t size_locked() const;

    std::string spool_path_;
    std::string offset_path_;
    std::uint64_t restart_bytes_;
    mutable std::mutex mu_;  // fd_ and inode_ (changed only by acknowledge, the sender's)
    int fd_ = -1;
    std::uint64_t inode_ = 0;
    std::atomic<std::uint64_t> offset_{0};
};

}  // namespace mxlane
