// dkim_cmd: mxlanectl dkim keygen DOMAIN SELECTOR [--algorithm rsa|ed25519] [--bits N] [--out FILE] | dkim list.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include "libshared/json.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/dkim/key_table.hpp"

namespace mxlane::ctl {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

json::object key_json(const dkim::Key& k) {
    return {{"domain", k.domain},       {"selector", k.selector}, {"file", k.file},
            {"algorithm", k.algorithm_name()}, {"bits", k.bits}, {"txt", k.txt_record()}};
}

std::string new_key_pem(bool rsa, int bits) {
    std::unique_ptr<EVP_PKEY, PkeyFree> key(rsa ? EVP_RSA_gen(static_cast<unsigned>(bits))
                                                : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) throw UsageError("cannot generate the key (OpenSSL failed)");
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw UsageError("cannot encode the key (OpenSSL failed)");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// Written whole or not at all, never over an existing file; mode 0600, and
// as root given to mail_owner, who runs the qrunner that reads it.
void write_key(const std::string& file, const std::string& pem, const std::string& mail_owner) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw UsageError(file + ": cannot create: " + std::strerror(errno));
    auto fail = [&](const std::string& what) {
        int e = errno;
        ::close(fd);
        ::unlink(file.c_str());
        return UsageError(file + ": " + what + ": " + std::strerror(e));
    };
    if (::geteuid() == 0) {
        struct passwd* pw = ::getpwnam(mail_owner.c_str());
        if (!pw) {
            errno = ENOENT;
            throw fail("cannot give it to mail_owner " + mail_owner);
        }
        if (::fchown(fd, pw->pw_uid, pw->pw_gid) != 0) throw fail("cannot give it to mail_owner " + mail_owner);
    }
    if (::write(fd, pem.data(), pem.size()) != static_cast<ssize_t>(pem.size())) throw fail("cannot write");
    if (::fsync(fd) != 0) throw fail("cannot write");
    if (::close(fd) != 0) {
        ::unlink(file.c_str());
        throw UsageError(file + ": cannot write: " + std::strerror(errno));
    }
}

int keygen(Context& c) {
    std::string algorithm = c.take_option("--algorithm").value_or("rsa");
    auto bits_arg = c.take_option("--bits");
    auto out = c.take_option("--out");
    c.no_more_args(3);
    if (c.args.size() < 3) throw UsageError("dkim keygen needs a DOMAIN and a SELECTOR");
    if (algorithm != "rsa" && algorithm != "ed25519") throw UsageError("--algorithm is rsa or ed25519, not " + algorithm);
    const bool rsa = algorithm == "rsa";
    int bits = rsa ? 2048 : 256;
    if (bits_arg) {
        if (!rsa) throw UsageError("--bits is for RSA keys (an Ed25519 key has 256)");
        auto [end, ec] = std::from_chars(bits_arg->data(), bits_arg->data() + bits_arg->size(), bits);
        if (ec != std::errc() || end != bits_arg->data() + bits_arg->size() || bits < 1024 || bits > 8192)
            throw UsageError("--bits is a number from 1024 to 8192 (RFC 8301), not " + *bits_arg);
    }
    const std::string& domain = c.args[1];
    const std::string& selector = c.args[2];
    std::string file = out.value_or(domain + "." + selector + ".pem");
    file = std::filesystem::absolute(file).lexically_normal().string();
    // The names are checked as the key table checks them, before any key is made.
    auto one_word = [](const std::string& text, const char* what) {
        if (text.empty() || text.find_first_of(" \t\r\n#") != std::string::npos)
            throw UsageError(std::string(what) + " (the key table's lines are words without white space or '#'): " + text);
    };
    one_word(domain, "not a domain name");
    one_word(selector, "not a selector");
    one_word(file, "not a file name dkim_key_table can hold");
    dkim::KeyLine line;
    try {
        auto lines = dkim::parse_key_table(domain + " " + selector + " " + file + "\n", "arguments");
        if (lines.size() != 1) throw UsageError("dkim keygen needs a DOMAIN and a SELECTOR");
        line = lines.front();
    } catch (const dkim::KeyError& e) {
        std::string why = e.what();  // "arguments:1: not a domain name: ..."
        throw UsageError(why.substr(std::min(why.size(), std::string("arguments:1: ").size())));
    }
    const std::string pem = new_key_pem(rsa, bits);
    dkim::Key key = dkim::parse_key(line, pem);
    write_key(file, pem, c.cfg.get("mail_owner"));
    if (c.json) {
        std::cout << json::serialize(key_json(key)) << "\n";
        return 0;
    }
    std::cerr << "mxlanectl: wrote " << file << " (" << key.algorithm_name() << ", " << key.bits
              << " bits); its dkim_key_table line: " << key.domain << " " << key.selector << " " << file
              << "\nmxlanectl: publish this DNS record:\n";
    std::cout << key.txt_record() << "\n";
    return 0;
}

int list(Context& c) {
    c.no_more_args(1);
    const std::string table = c.cfg.get("dkim_key_table");
    dkim::KeyTable keys;
    if (!table.empty()) {
        try {
            keys = dkim::KeyTable::load(table);
        } catch (const dkim::KeyError& e) {
            throw UsageError(std::string("dkim_key_table: ") + e.what());
        }
    }
    if (c.json) {
        json::array rows;
        for (const auto& k : keys.all()) rows.push_back(key_json(k));
        std::cout << json::serialize(std::move(rows)) << "\n";
        return 0;
    }
    if (keys.empty()) {
        std::cout << (table.empty() ? "dkim_key_table is not set: nothing is signed\n" : "dkim_key_table is empty\n");
        return 0;
    }
    Table t({"DOMAIN", "SELECTOR", "ALGORITHM", "BITS", "FILE"});
    for (const auto& k : keys.all()) t.add({k.domain, k.selector, k.algorithm_name(), std::to_string(k.bits), k.file});
    std::cout << t.str() << "\n";
    for (const auto& k : keys.all()) std::cout << k.txt_record() << "\n";
    return 0;
}

}  // namespace

int cmd_dkim(Context& c) {
    if (c.args.empty()) throw UsageError("dkim needs keygen or list");
    if (c.args[0] == "keygen") return keygen(c);
    if (c.args[0] == "list") return list(c);
    throw UsageError("dkim needs keygen or list, not " + c.args[0]);
}

}  // namespace mxlane::ctl
