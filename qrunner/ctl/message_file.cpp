// message_file: the message given to submit: its text, its From: address, the headers it lacks.
#include "qrunner/ctl/message_file.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

// The line ending the file already uses, so that added headers match it.
std::string_view eol_of(std::string_view text) {
    auto lf = text.find('\n');
    return lf != std::string_view::npos && lf > 0 && text[lf - 1] == '\r' ? "\r\n" : "\n";
}

}  // namespace

MessageFile MessageFile::read(const std::string& path, std::uint64_t size_limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(path + ": cannot open the message file");
    MessageFile m;
    m.path_ = path;
    std::ostringstream text;
    text << in.rdbuf();
    m.text_ = text.str();
    if (trim(m.text_).empty()) throw UsageError(path + ":1: the message is empty");
    if (size_limit && m.text_.size() > size_limit)
        throw UsageError(path + ": the message has " + std::to_string(m.text_.size()) +
                         " bytes, more than message_size_limit (" + std::to_string(size_limit) + ")");
    return m;
}

std::optional<std::string> MessageFile::header(std::string_view name) const {
    auto fields = parse_header_section(text_);
    if (const HeaderField* f = find_header_field(fields, name)) return f->value;
    return std::nullopt;
}

std::optional<std::string> MessageFile::from_address() const {
    auto from = header("From");
    if (!from) return std::nullopt;
    std::string a;
    if (auto lt = from->rfind('<'); lt != std::string::npos) {
        auto gt = from->find('>', lt);
        a = from->substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
    } else {
        a = trim(from->substr(0, from->find('(')));  // "ann@example.com (Ann)"
    }
    a = std::string(trim(a));
    if (!valid_address(a)) return std::nullopt;
    return a;
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
