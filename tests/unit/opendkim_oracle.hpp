// opendkim_oracle: OpenDKIM's library as an independent judge of mxlane's DKIM signatures (tests and fuzzing only).
#pragma once
#include <string>
#include <utility>
#include <vector>

struct dkim_lib;

namespace mxlane::test {

// Verifies messages with libopendkim, its keys answered from a file instead
// of DNS (DKIM_QUERY_FILE): no network.
class OpendkimVerifier {
public:
    // records: ("sel._domainkey.shop.test", "v=DKIM1; k=rsa; p=...")
    explicit OpendkimVerifier(const std::vector<std::pair<std::string, std::string>>& records);
    ~OpendkimVerifier();
    OpendkimVerifier(const OpendkimVerifier&) = delete;
    OpendkimVerifier& operator=(const OpendkimVerifier&) = delete;

    // `message`: CRLF lines, not dot-stuffed. The number of its DKIM-Signature
    // fields that pass (signature and body hash); `found` gets how many it has.
    int passed(const std::string& message, int* found = nullptr) const;

private:
    std::string file_;
    dkim_lib* lib_ = nullptr;
};

}  // namespace mxlane::test
