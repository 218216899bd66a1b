// opendkim_oracle: OpenDKIM's library as an independent judge of mxlane's DKIM signatures (tests and fuzzing only).
#include "tests/unit/opendkim_oracle.hpp"

// The library's header is C99: its _Bool is C++'s bool (same size and ABI).
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace mxlane::test {

OpendkimVerifier::OpendkimVerifier(const std::vector<std::pair<std::string, std::string>>& records) {
    char name[] = "/tmp/mxlane-dkim-keys-XXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    file_ = name;
    std::ofstream out(file_);
    for (const auto& [n, r] : records) out << n << " " << r << "\n";
    out.close();
    lib_ = dkim_init(nullptr, nullptr);
    if (!lib_) throw std::runtime_error("dkim_init failed");
    int method = DKIM_QUERY_FILE;
    dkim_options(lib_, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &method, sizeof method);
    dkim_options(lib_, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, file_.data(), file_.size());
}

OpendkimVerifier::~OpendkimVerifier() {
    dkim_close(lib_);
    ::unlink(file_.c_str());
}

int OpendkimVerifier::passed(const std::string& message, int* found) const {
    DKIM_STAT st;
    DKIM* d = dkim_verify(lib_, reinterpret_cast<const unsigned char*>("test"), nullptr, &st);
    if (!d) throw std::runtime_error("dkim_verify failed");
    std::string copy = message;
    dkim_chunk(d, reinterpret_cast<unsigned char*>(copy.data()), copy.size());
    dkim_chunk(d, nullptr, 0);
    dkim_eom(d, nullptr);
    DKIM_SIGINFO** sigs = nullptr;
    int n = 0;
    int ok = 0;
    if (dkim_getsiglist(d, &sigs, &n) == DKIM_STAT_OK)
        for (int i = 0; i < n; ++i)
            if (DKIM_SIG_CHECK(sigs[i])) ++ok;
    if (found) *found = n;
    dkim_free(d);
    return ok;
}

}  // namespace mxlane::test
