// metrics: what the qrunner counts as it delivers (results by state and class, delivery latency), for GET /metrics.
#include "qrunner/metrics.hpp"

#include <cstdio>

namespace mxlane::qrunner {

std::string prometheus_label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void Metrics::add(const std::vector<Result>& results) {
    std::lock_guard lock(mu_);
    for (const auto& r : results) {
        ++results_[{std::string(r.state), std::string(r.cls)}];
        if (r.latency_s < 0) continue;
        for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i)
            if (r.latency_s <= kLatencyBuckets[i]) {
                ++buckets_[i];
                break;
            }
        ++count_;
        sum_ += r.latency_s;
    }
}

namespace {

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

}  // namespace

std::string Metrics::text() const {
    std::lock_guard lock(mu_);
    std::string out =
        "# HELP mxlane_results_total Recipient results since the qrunner started, by state and failure class.\n"
        "# TYPE mxlane_results_total counter\n";
    for (const auto& [key, n] : results_)
        out += "mxlane_results_total{state=\"" + prometheus_label(key.first) + "\",class=\"" +
               prometheus_label(key.second) + "\"} " + std::to_string(n) + "\n";
    out += "# HELP mxlane_delivery_latency_seconds Time from a recipient's claim to the reply that decided it.\n"
           "# TYPE mxlane_delivery_latency_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += buckets_[i];
        out += "mxlane_delivery_latency_seconds_bucket{le=\"" + number(kLatencyBuckets[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    out += "mxlane_delivery_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
    out += "mxlane_delivery_latency_seconds_sum " + number(sum_) + "\n";
    out += "mxlane_delivery_latency_seconds_count " + std::to_string(count_) + "\n";
    return out;
}

}  // namespace mxlane::qrunner
