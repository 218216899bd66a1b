// message_file: the message given to submit: its text, its From: address, the headers it lacks.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::ctl {

class MessageFile {
public:
    // Reads the whole file (messages are bounded by message_size_limit, recipients are not);
    // a missing, empty or oversized file is a UsageError naming it. An oversized file
    // is refused by its size, before it is read.
    static MessageFile read(const std::string& path, std::uint64_t size_limit);

    const std::string& path() const { return path_; }
    const std::string& text() const { return text_; }
    void set_text(std::string text) { text_ = std::move(text); }

    // The unfolded values of every header of that name (case-insensitive), in order.
    std::vector<std::string> headers(std::string_view name) const;
    // The first of them.
    std::optional<std::string> header(std::string_view name) const;
    // The one mailbox of the one From: header, parsed as RFC 5322 says: "Ann <ann@example.com>"
    // and "ann@example.com (Ann)" give ann@example.com; an address inside a comment or a
    // quoted display name is not one. Anything else (no From:, two From: headers, two
    // mailboxes, a syntax error, an address that is no envelope address) is a
    // UsageError that asks for --from: the sender is never a guess.
    std::string from_address() const;
    // 1-based line of a byte offset, for error messages.
    std::size_t line_of(std::size_t offset) const;
    // Adds Date: and Message-ID: when absent: no MTA's cleanup sees this message
    // before it goes out, and receivers score mail without them as spam (RFC 5322 3.6).
    void add_missing_headers(std::int64_t now_ms, std::string_view id_domain);

private:
    std::string path_, text_;
};

}  // namespace mxlane::ctl
