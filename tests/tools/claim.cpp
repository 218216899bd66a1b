// claim: test tool that marks due recipients in flight, as a qrunner does mid-delivery, and prints how many.
// usage: claim QUEUE_DIR
#include <iostream>

#include "libshared/store/queue_store.hpp"

using namespace mxlane::store;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: claim QUEUE_DIR\n";
        return 1;
    }
    QueueStore q(argv[1]);
    std::int64_t now = now_ms(), hour = 3600 * 1000;
    auto claim = q.claim_due(now, 100000, now, 120 * hour);
    std::cout << claim.due.size() << "\n";
    return 0;
}
