// message_context: one message being received: envelope, header fields, body (spilled to a file when large).
#include "milter/message_context.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "libshared/address.hpp"

namespace mxlane::milter {
namespace {

bool has_eight_bit(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && to_lower(s.substr(0, prefix.size())) == prefix;
}

// Folded values come with LF (or CRLF) between their lines; the stored text uses CRLF throughout.
std::string crlf_lines(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 8);
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
        if (c == '\n' || c == '\r') {
            out += "\r\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string kept_mail_params(const std::vector<std::string>& params, bool& eight_bit, bool& smtputf8) {
    std::string out;
    for (const auto& p : params) {
        std::string lower = to_lower(p);
        if (lower == "smtputf8") smtputf8 = true;
        else if (lower == "body=8bitmime") eight_bit = true;
        else if (!starts_with_nocase(p, "body=") && !starts_with_nocase(p, "ret=") &&
                 !starts_with_nocase(p, "envid="))
            continue;
        if (!out.empty()) out += ' ';
        out += p;
    }
    return out;
}

std::atomic<unsigned> MessageContext::alive_{0};

MessageContext::MessageContext(std::string spill_dir, std::size_t size_limit)
    : spill_dir_(std::move(spill_dir)), size_limit_(size_limit) {
    alive_.fetch_add(1, std::memory_order_relaxed);
}

MessageContext::~MessageContext() { alive_.fetch_sub(1, std::memory_order_relaxed); }

void MessageContext::set_sender(char** argv) {
    sender_ = argv && argv[0] ? strip_brackets(argv[0]) : std::string();
    std::vector<std::string> params;
    for (int i = 1; argv && argv[0] && argv[i]; ++i) params.emplace_back(argv[i]);
    mail_params_ = kept_mail_params(params, eight_bit_, smtputf8_);
}

void MessageContext::add_recipient(std::string_view address) {
    recipients_.push_back(strip_brackets(address));
    facts.recipients = recipients_.size();
}

std::string MessageContext::job_owner() const { return to_lower(login_.empty() ? sender_ : login_); }

void MessageContext::add_header(std::string_view name, std::string_view value, bool has_leading_space) {
    std::string line(name);
    line += has_leading_space ? ":" : ": ";
    line += crlf_lines(value);
    line += "\r\n";
    Field f{to_lower(name), {}, line.size()};
    if (f.name == "message-id") f.message_id = value;
    fields_.push_back(std::move(f));
    append(line);
}

void MessageContext::discount_mta_fields(std::string_view queue_id) {
    if (queue_id.empty()) return;
    std::string mark = "." + std::string(queue_id) + "@";
    std::size_t start = fields_.size();
    for (std::size_t i = fields_.size(); i-- > 0;)
        if (fields_[i].name == "message-id" && fields_[i].message_id.find(mark) != std::string::npos) {
            start = i;
            break;
        }
    std::size_t bytes = 0;
    for (std::size_t i = start; i < fields_.size(); ++i) {
        const std::string& n = fields_[i].name;
        // What cleanup(8) inserts: only such fields may follow its Message-Id.
        if (n != "message-id" && n != "date" && n != "from" && n != "to" && !n.starts_with("resent-")) return;
        bytes += fields_[i].bytes;
    }
    mta_bytes_ = bytes;
}

void MessageContext::end_of_headers() { append("\r\n"); }

void MessageContext::add_body(std::string_view chunk) {
    if (digest_) digest_->add(chunk);
    append(chunk);
}

void MessageContext::start_body_digest() { digest_ = std::make_unique<BodyDigest>(); }

std::string MessageContext::body_digest() {
    if (!digest_) return {};
    std::string hex = digest_->hex();
    digest_.reset();
    return hex;
}

void MessageContext::append(std::string_view bytes) {
    size_ += bytes.size();
    if (too_large()) return;  // the caller answers at once; nothing more is worth keeping
    if (!eight_bit_ && has_eight_bit(bytes)) eight_bit_ = true;
    if (file_) {
        file_->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        return;
    }
    mem_.append(bytes);
    if (mem_.size() > kSpillBytes) spill();
}

// Moves the text to a file that is unlinked at once, so that nothing is left
// behind however the milter ends.
void MessageContext::spill() {
    if (::mkdir(spill_dir_.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::runtime_error("cannot create " + spill_dir_ + ": " + std::strerror(errno));
    std::string path = spill_dir_ + "/body.XXXXXX";
    int fd = ::mkstemp(path.data());
    if (fd < 0) throw std::runtime_error("cannot create a file in " + spill_dir_ + ": " + std::strerror(errno));
    ::close(fd);
    auto f = std::make_unique<std::fstream>(path, std::ios::in | std::ios::out | std::ios::binary | std::ios::trunc);
    ::unlink(path.c_str());
    if (!*f) throw std::runtime_error("cannot open " + path);
    f->write(mem_.data(), static_cast<std::streamsize>(mem_.size()));
    if (!*f) throw std::runtime_error("cannot write " + path + " (disk full?)");
    file_ = std::move(f);
    std::string().swap(mem_);
}

std::istream& MessageContext::text() {
    if (file_) {
        file_->flush();
        if (!*file_) throw std::runtime_error("cannot write the message to " + spill_dir_ + " (disk full?)");
        file_->seekg(0);
        return *file_;
    }
    mem_stream_ = std::make_unique<std::istringstream>(std::move(mem_));
    mem_.clear();
    return *mem_stream_;
}

}  // namespace mxlane::milter
