// message_file: the message given to submit: its text, its From: address, the headers it lacks.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mxlane::ctl {

class MessageFile {
public:
    // Reads the whole file (messages are bounded by message_size_limit, recipients are not);
    // a missing, empty or oversized file is a UsageError naming it.
    static MessageFile read(const std::string& path, std::uint64_t size_limit);

    const std::string& path() const { return path_; }
    const std::string& text() const { return text_; }
    void set_text(std::string text) { text_ = std::move(text); }

    // The unfolded value of the first header of that name (case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    // The address in From: ("Ann <ann@example.com>" -> "ann@example.com"), if there is one.
    std::optional<std::string> from_address() const;
    // 1-based line of a byte offset, for error messages.
    std::size_t line_of(std::size_t offset) const;
    // Adds Date: and Message-ID: when absent: no MTA's cleanup sees this message
    // before it goes out, and receivers score mail without them as spam (RFC 5322 3.6).
    void add_missing_headers(std::int64_t now_ms, std::string_view id_domain);

private:
    std::string path_, text_;
};

}  // namespace mxlane::ctl
