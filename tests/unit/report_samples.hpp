// report_samples: the bounce and feedback-report corpus in tests/unit/reports/, read as LF and as CRLF messages.
#pragma once
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef MXLANE_SRCDIR
#define MXLANE_SRCDIR "."
#endif

namespace mxlane::test {

inline std::string report_sample(const std::string& name) {
    std::ifstream in(std::string(MXLANE_SRCDIR) + "/tests/unit/reports/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing sample " + name);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string with_crlf(std::string_view lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// The sample as stored (LF) and as it arrives over SMTP (CRLF).
inline std::vector<std::string> both_line_ends(const std::string& name) {
    std::string lf = report_sample(name);
    return {lf, with_crlf(lf)};
}

}  // namespace mxlane::test
