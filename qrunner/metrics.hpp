// metrics: what the qrunner counts as it delivers (results by state and class, delivery latency), for GET /metrics.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::qrunner {

// Counters since the qrunner started, in the Prometheus text format. Cheap on
// the result path: one short lock per batch of results.
class Metrics {
public:
    // Upper bounds (seconds) of the delivery latency histogram: from the claim
    // to the reply that decided the recipient.
    static constexpr std::array<double, 12> kLatencyBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};

    // One recipient's result: its state word (delivered, deferred, ...), its
    // failure class ("" for none) and the seconds since its claim (negative:
    // made final without an attempt, expired or suppressed: not in the histogram).
    struct Result {
        std::string_view state, cls;
        double latency_s = -1;
    };
    // A transaction's results, under one lock.
    void add(const std::vector<Result>& results);
    // The exposition text of everything counted so far.
    std::string text() const;

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, std::string>, std::uint64_t> results_;  // (state, class) -> count
    std::array<std::uint64_t, kLatencyBuckets.size()> buckets_{};  // not cumulative; text() sums them
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

// A label value in the Prometheus text format (backslash, quote and newline escaped).
std::string prometheus_label(std::string_view v);

}  // namespace mxlane::qrunner
