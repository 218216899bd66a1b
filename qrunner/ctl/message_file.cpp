// message_file: the message given to submit: its text, its From: address, the headers it lacks.
#include "qrunner/ctl/message_file.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/mailbox_list.hpp"

namespace mxlane::ctl {
namespace {

// The line ending the file already uses, so that added headers match it.
std::string_view eol_of(std::string_view text) {
    auto lf = text.find('\n');
    return lf != std::string_view::npos && lf > 0 && text[lf - 1] == '\r' ? "\r\n" : "\n";
}

UsageError too_big(const std::string& path, std::uintmax_t size, std::uint64_t limit) {
    return UsageError(path + ": the message has " + std::to_string(size) + " bytes, more than message_size_limit (" +
                      std::to_string(limit) + ")");
}

}  // namespace

MessageFile MessageFile::read(const std::string& path, std::uint64_t size_limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(path + ": cannot open the message file");
    // The size first: a file far over the limit is refused without being read into memory.
    std::error_code ec;
    std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size_limit && size > size_limit) throw too_big(path, size, size_limit);
    MessageFile m;
    m.path_ = path;
    std::ostringstream text;
    text << in.rdbuf();
    m.text_ = text.str();
    if (trim(m.text_).empty()) throw UsageError(path + ":1: the message is empty");
    // Again after reading: a pipe or a file that grew has no size to trust beforehand.
    if (size_limit && m.text_.size() > size_limit) throw too_big(path, m.text_.size(), size_limit);
    return m;
}

std::vector<std::string> MessageFile::headers(std::string_view name) const {
    std::vector<std::string> values;
    for (const auto& f : parse_header_section(text_))
        if (same_field_name(f.name, name)) values.push_back(f.value);
    return values;
}

std::optional<std::string> MessageFile::header(std::string_view name) const {
    auto values = headers(name);
    if (values.empty()) return std::nullopt;
    return values.front();
}

std::string MessageFile::from_address() const {
    const std::string fix = "; give the envelope sender with --from ADDR";
    auto from = headers("From");
    if (from.empty()) throw UsageError(path_ + ": no address in a From: header (there is none)" + fix);
    if (from.size() > 1)
        throw UsageError(path_ + ": " + std::to_string(from.size()) + " From: headers (RFC 5322 allows one)" + fix);
    std::vector<Mailbox> boxes;
    try {
        boxes = parse_address_list(from.front());
    } catch (const AddressSyntaxError& e) {
        throw UsageError(path_ + ": From: is not an address list: " + e.what() + fix);
    }
    if (boxes.empty()) throw UsageError(path_ + ": no address in the From: header" + fix);
    if (boxes.size() > 1) {
        std::string all;
        for (const auto& b : boxes) all += (all.empty() ? "<" : ", <") + b.address + ">";
        throw UsageError(path_ + ": the From: header names " + std::to_string(boxes.size()) +
                         " mailboxes (" + all + "), so the sender is ambiguous" + fix);
    }
    const std::string& a = boxes.front().address;
    if (!valid_address(a)) throw UsageError(path_ + ": the From: address is not usable as an envelope sender: " + a + fix);
    return boxes.front().address;
}

std::size_t MessageFile::line_of(std::size_t offset) const {
    offset = std::min(offset, text_.size());
    return 1 + static_cast<std::size_t>(std::count(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

void MessageFile::add_missing_headers(std::int64_t now_ms, std::string_view id_domain) {
    std::string_view eol = eol_of(text_);
    std::string added;
    if (!header("Date")) added += "Date: " + rfc5322_date(now_ms) + std::string(eol);
    if (!header("Message-ID")) {
        std::random_device rd;
        std::ostringstream id;
        id << std::hex << now_ms << '.' << rd() << rd();
        added += "Message-ID: <mxlane." + id.str() + "@" + std::string(id_domain) + ">" + std::string(eol);
    }
    text_ = added + text_;
}

}  // namespace mxlane::ctl
