// store_fixtures: jobs, intakes and outcomes for the store tests (test_store, test_store_faults).
#pragma once

#include <cppunit/extensions/HelperMacros.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#if defined(__SANITIZE_ADDRESS__) && __has_include(<sanitizer/lsan_interface.h>)
#include <sanitizer/lsan_interface.h>
#define MXLANE_LSAN 1
#endif

#include "libshared/log.hpp"
#include "libshared/queue_lifetime.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"
#include "qrunner/result_writer.hpp"
#include "tests/unit/temp_dir.hpp"


namespace store_fixtures {
using namespace mxlane::store;
using mxlane::test::TempDir;


inline Intake intake(const std::string& name, std::initializer_list<const char*> rcpts) {
    Intake in;
    in.job_name = name;
    in.sender = "news@sender.test";
    in.host_queue_id = "4Xq1";
    for (const char* r : rcpts) in.recipients.push_back({r, {}});
    return in;
}

inline IntakeResult add(QueueStore& q, const Intake& in, std::int64_t now, const std::string& text = "Subject: t\n\nhi\n") {
    std::istringstream body(text);
    return q.add_message(in, body, now);
}

inline Outcome outcome(const Recipient& r, RcptState s, std::int64_t next = 0) {
    Outcome o;
    o.job_id = r.job_id;
    o.seq = r.seq;
    o.state = s;
    o.next_attempt = next;
    o.attempt_time = 5000;
    o.reply_code = s == RcptState::delivered ? 250 : 451;
    o.dsn = s == RcptState::delivered ? "2.0.0" : "4.3.0";
    o.reply_text = o.reply_code == 250 ? "250 2.0.0 ok" : "451 4.3.0 later";
    o.host = "mx.test[127.0.0.11]:25";
    o.path = "direct";
    return o;
}

// A panicked environment cannot be closed: Berkeley DB keeps its handles (the
// process is meant to exit). What is allocated while this lives is no leak to report.
struct PanicLeaksIgnored {
#ifdef MXLANE_LSAN
    PanicLeaksIgnored() { __lsan_disable(); }
    ~PanicLeaksIgnored() { __lsan_enable(); }
#else
    PanicLeaksIgnored() {}  // user-provided: a guard, not an unused variable
    ~PanicLeaksIgnored() {}
#endif
};

// Writes garbage under a recipient's key, as a damaged store would hold.
inline void damage(QueueStore& q, const Recipient& r) {
    q.env().transact([&](DbTxn* txn) { q.env().put(q.env().recipients(), txn, r.key(), std::string("\x07garbage")); });
}

// Puts a job on hold the way a hold looks between its two steps: the job record
// says held, its recipients are still due.
inline void mark_job_held(QueueStore& q, std::uint64_t id) {
    auto j = *q.job(id);
    j.state = JobState::held;
    q.env().transact([&](DbTxn* txn) { q.env().put(q.env().jobs(), txn, job_key(id), j.encode()); });
}

inline std::uint64_t count_of(QueueStore& q, std::uint64_t job, RcptState s) {
    return q.job(job)->counts[static_cast<int>(s)];
}

template <class Pred>
inline bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}


}  // namespace store_fixtures
