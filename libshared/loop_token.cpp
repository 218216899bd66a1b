// loop_token: the X-Mxlane-Relayed header value that keeps relayed mail from being captured again.
#include "libshared/loop_token.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "libshared/address.hpp"
#include "libshared/text.hpp"

namespace mxlane {
namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::int64_t kFutureSkew = 300;  // seconds a token may come "from the future"

std::string errno_text() { return std::strerror(errno); }

// Reads exactly the key file; nullopt-like empty string when it does not exist.
std::string read_key_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return {};
        throw LoopKeyError("cannot read " + path + ": " + errno_text());
    }
    char buf[kKeyBytes + 1];
    std::size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = ::read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            throw LoopKeyError("cannot read " + path + ": " + std::strerror(e));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got != kKeyBytes)
        throw LoopKeyError(path + " is damaged: " + std::to_string(got) + " bytes, want " +
                           std::to_string(kKeyBytes));
    return std::string(buf, kKeyBytes);
}

// Writes a fresh key to a private temporary file (mkstemp: O_EXCL, mode 0600)
// and links it into place: link() fails when another process won the race, and
// nobody ever sees a half-written key.
void create_key_file(const std::string& dir, const std::string& path) {
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
        throw LoopKeyError("cannot create " + dir + ": " + errno_text());
    unsigned char key[kKeyBytes];
    if (RAND_bytes(key, sizeof key) != 1) throw LoopKeyError("no random bytes for " + path);
    std::string tmp = path + ".XXXXXX";
    int fd = ::mkstemp(tmp.data());
    if (fd < 0) throw LoopKeyError("cannot create " + tmp + ": " + errno_text());
    bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, key, sizeof key) == static_cast<ssize_t>(sizeof key) &&
              ::fsync(fd) == 0;
    int e = errno;
    ::close(fd);
    OPENSSL_cleanse(key, sizeof key);
    if (ok && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
        ok = false;
        e = errno;
    }
    ::unlink(tmp.c_str());
    if (!ok) throw LoopKeyError("cannot create " + path + ": " + std::strerror(e));
}

bool parse_i64(std::string_view s, std::int64_t& v) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

std::string to_hex(const unsigned char* md, unsigned int len) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

}  // namespace

std::string hmac_sha256(const std::string& key, std::string_view text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(text.data()), text.size(), md, &len))
        throw LoopKeyError("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hmac_hex(const std::string& key, std::string_view text) {
    const std::string md = hmac_sha256(key, text);
    return to_hex(reinterpret_cast<const unsigned char*>(md.data()), static_cast<unsigned int>(md.size()));
}

// The key as last read, and which file it came from: a key file replaced or
// deleted under a running program is read (or made) again, so that the milter
// and the qrunner always agree on the key that is on disk.
struct CachedKey {
    std::string key;
    dev_t dev = 0;
    ino_t ino = 0;
    struct timespec mtime {};
    bool same_file(const struct stat& st) const {
        return st.st_dev == dev && st.st_ino == ino && st.st_mtim.tv_sec == mtime.tv_sec &&
               st.st_mtim.tv_nsec == mtime.tv_nsec;
    }
};

std::string loop_key(const std::string& queue_directory) {
    static std::mutex mu;
    static std::map<std::string, CachedKey> cache;
    std::lock_guard lock(mu);
    const std::string path = queue_directory + "/loop.key";
    struct stat st;
    const bool exists = ::stat(path.c_str(), &st) == 0;
    if (auto it = cache.find(queue_directory); it != cache.end() && exists && it->second.same_file(st))
        return it->second.key;
    std::string key = read_key_file(path);
    if (key.empty()) {
        create_key_file(queue_directory, path);
        key = read_key_file(path);
        if (key.empty()) throw LoopKeyError("cannot read " + path + ": it vanished after creation");
    }
    if (::stat(path.c_str(), &st) != 0) throw LoopKeyError("cannot read " + path + ": " + errno_text());
    cache[queue_directory] = CachedKey{key, st.st_dev, st.st_ino, st.st_mtim};
    return key;
}

std::string trace_prefix(std::string_view host) {
    return "by " + std::string(host) + " (mxlane) ";
}

bool is_own_trace(std::string_view value, std::string_view host) {
    while (!value.empty() && std::strchr(" \t\r\n", value.front())) value.remove_prefix(1);
    const std::string want = trace_prefix(host);
    return value.size() >= want.size() && strncasecmp(value.data(), want.data(), want.size()) == 0;
}

struct BodyDigest::Impl {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

BodyDigest::BodyDigest() : impl_(std::make_unique<Impl>()) {
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw LoopKeyError("SHA-256 unavailable");
}

BodyDigest::~BodyDigest() = default;

void BodyDigest::add(std::string_view chunk) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!chunk.empty()) {
        std::size_t run = 0;
        while (run < chunk.size() && !is_space(chunk[run])) ++run;
        if (run > 0) EVP_DigestUpdate(impl_->ctx, chunk.data(), run);
        while (run < chunk.size() && is_space(chunk[run])) ++run;
        chunk.remove_prefix(run);
    }
}

std::string BodyDigest::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) throw LoopKeyError("SHA-256 failed");
    return to_hex(md, len);
}

std::string loop_binding_text(const LoopBinding& b) {
    std::vector<std::string> rcpts;
    for (const auto& r : b.recipients) rcpts.push_back(to_lower(r));
    std::sort(rcpts.begin(), rcpts.end());
    // No address holds a line end (RFC 5321): the fields cannot run into each other.
    std::string text = "\n" + to_lower(b.sender);
    for (const auto& r : rcpts) text += "\n" + r;
    return text + "\n" + b.body_digest;
}

std::string loop_token_make_at(const std::string& queue_directory, std::string_view job_id,
                               std::uint64_t message_id, std::int64_t now, const LoopBinding& binding) {
    std::string text = std::string(job_id) + "." + std::to_string(message_id) + "." + std::to_string(now);
    return text + "." + hmac_hex(loop_key(queue_directory), text + loop_binding_text(binding));
}

std::string loop_token_make(const std::string& queue_directory, std::string_view job_id,
                            std::uint64_t message_id, const LoopBinding& binding) {
    return loop_token_make_at(queue_directory, job_id, message_id, std::time(nullptr), binding);
}

bool loop_token_valid_at(const std::string& queue_directory, std::string_view token,
                         std::int64_t max_age_seconds, std::int64_t now, const LoopBinding& binding) {
    // Header values may arrive with folding white space around them.
    token = trim(token);
    auto mac_dot = token.rfind('.');
    if (mac_dot == std::string_view::npos || token.size() - mac_dot - 1 != 64) return false;
    std::string_view text = token.substr(0, mac_dot);
    auto time_dot = text.rfind('.');
    if (time_dot == std::string_view::npos) return false;
    std::int64_t made = 0;
    if (!parse_i64(text.substr(time_dot + 1), made)) return false;
    if (made > now + kFutureSkew || now - made > max_age_seconds) return false;
    std::string want = hmac_hex(loop_key(queue_directory), std::string(text) + loop_binding_text(binding));
    return CRYPTO_memcmp(want.data(), token.data() + mac_dot + 1, want.size()) == 0;
}

bool loop_token_valid(const std::string& queue_directory, std::string_view token,
                      std::int64_t max_age_seconds, const LoopBinding& binding) {
    return loop_token_valid_at(queue_directory, token, max_age_seconds, std::time(nullptr), binding);
}

}  // namespace mxlane
