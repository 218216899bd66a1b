// rcpttoken: test tool that checks recipient tokens with the queue's loop key and prints whom each names.
// usage: rcpttoken QUEUE_DIR TOKEN...   one line per token: "JOB ADDRESS", or "forged" (exit 1 if any is)
#include <iostream>

#include "libshared/recipient_token.hpp"
#include "libshared/store/queue_store.hpp"

using namespace mxlane;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: rcpttoken QUEUE_DIR TOKEN...\n";
        return 2;
    }
    store::QueueStore q(argv[1]);
    int rc = 0;
    for (int i = 2; i < argc; ++i) {
        auto ref = recipient_token_check(argv[1], argv[i]);
        auto r = ref ? q.recipient(ref->job_id, ref->seq) : std::nullopt;
        if (!r) {
            std::cout << "forged\n";
            rc = 1;
            continue;
        }
        std::cout << store::format_job_id(ref->job_id) << " " << r->address << "\n";
    }
    return rc;
}
