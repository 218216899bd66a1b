// suppression_sync: what one shared_state sync step costs on a host with a large suppression list (docs/SCALE.md).
// Usage: suppression_sync EMPTY_DIR [ADDRESSES]  (default 1000000). Builds a queue store with that many
// suppressions, then times, on the store: the whole-list compare (read every entry, compare with the
// list last agreed) and the change log's step (its end; the changes since), with no change and with one.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "libshared/store/queue_store.hpp"
#include "libshared/store/records.hpp"

using namespace mxlane::store;
using Clock = std::chrono::steady_clock;

namespace {

template <class F>
double ms(F&& f) {
    const auto t = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// What a sync by comparing does: the whole list read, and compared with what Redis had.
std::size_t compare(QueueStore& q, const std::map<std::string, std::string>& known) {
    std::map<std::string, std::string> here;
    for (auto& s : q.suppressions()) here[s.address] = s.reason;
    std::size_t changes = 0;
    for (const auto& [k, v] : here)
        if (auto it = known.find(k); it == known.end() || it->second != v) ++changes;
    return changes;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: suppression_sync EMPTY_DIR [ADDRESSES]\n");
        return 2;
    }
    const long n = argc > 2 ? std::atol(argv[2]) : 1000000;
    QueueStore q(argv[1]);
    Environment& env = q.env();
    // Filled as an import would be: many per transaction (the log is not what is measured here).
    const double fill = ms([&] {
        for (long i = 0; i < n;) {
            env.transact([&](DbTxn* txn) {
                for (long j = 0; j < 10000 && i + j < n; ++j) {
                    const std::string a = "user" + std::to_string(i + j) + "@bench.test";
                    env.put(env.suppressed(), txn, a, Suppression{a, "bounce", 1, 0}.encode());
                }
                return 0;
            }, Commit::write_nosync);
            i += 10000;
        }
    });
    std::map<std::string, std::string> known;
    for (auto& s : q.suppressions()) known[s.address] = s.reason;
    std::printf("%ld suppressions (filled in %.0f ms)\n", n, fill);

    std::size_t found = 0;
    const double compare_none = ms([&] { found = compare(q, known); });
    std::printf("compare, no change:   %10.3f ms (%zu changes)\n", compare_none, found);
    std::uint64_t end = 0;
    const double log_none = ms([&] { end = q.suppression_log_end(); });
    std::printf("log, no change:       %10.3f ms (end %llu)\n", log_none, static_cast<unsigned long long>(end));

    q.suppress("new@bench.test", "manual", 2);
    const double compare_one = ms([&] { found = compare(q, known); });
    std::printf("compare, one change:  %10.3f ms (%zu changes)\n", compare_one, found);
    std::size_t read = 0;
    const double log_one = ms([&] {
        if (q.suppression_log_end() != end) read = q.suppression_changes(end, 10000)->size();
    });
    std::printf("log, one change:      %10.3f ms (%zu changes)\n", log_one, read);
    return 0;
}
