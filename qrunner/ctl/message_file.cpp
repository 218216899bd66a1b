// message_file: the message given to submit: its text, its From: address, the headers it lacks.
#include "qrunner/ctl/message_file.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "libshared/address.hpp"
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
    std::string_view t = text_;
    std::optional<std::string> value;
    for (std::size_t pos = 0; pos < t.size();) {
        std::size_t end = t.find('\n', pos);
        std::string_view line = t.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // end of the header section
        bool continuation = line.front() == ' ' || line.front() == '\t';
        if (value && continuation) *value += " " + trim(line);
        else if (value) return value;
        else if (auto colon = line.find(':'); colon != std::string_view::npos && !continuation &&
                 to_lower(trim(line.substr(0, colon))) == to_lower(name))
            value = trim(line.substr(colon + 1));
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
    return value;
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
    a = trim(a);
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
    if (!header("Date")) added += "Date: " + utc_time(now_ms, "%a, %d %b %Y %H:%M:%S +0000") + std::string(eol);
    if (!header("Message-ID")) {
        std::random_device rd;
        std::ostringstream id;
        id << std::hex << now_ms << '.' << rd() << rd();
        added += "Message-ID: <mxlane." + id.str() + "@" + std::string(id_domain) + ">" + std::string(eol);
    }
    text_ = added + text_;
}

}  // namespace mxlane::ctl
