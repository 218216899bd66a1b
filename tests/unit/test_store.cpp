// test_store: the queue store's records, intake, due index order and ranges, claims, results, admin.
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

using namespace mxlane::store;
using mxlane::test::TempDir;

namespace {

Intake intake(const std::string& name, std::initializer_list<const char*> rcpts) {
    Intake in;
    in.job_name = name;
    in.sender = "news@sender.test";
    in.host_queue_id = "4Xq1";
    for (const char* r : rcpts) in.recipients.push_back({r, {}});
    return in;
}

IntakeResult add(QueueStore& q, const Intake& in, std::int64_t now, const std::string& text = "Subject: t\n\nhi\n") {
    std::istringstream body(text);
    return q.add_message(in, body, now);
}

Outcome outcome(const Recipient& r, RcptState s, std::int64_t next = 0) {
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
void damage(QueueStore& q, const Recipient& r) {
    q.env().transact([&](DbTxn* txn) { q.env().put(q.env().recipients(), txn, r.key(), std::string("\x07garbage")); });
}

// Puts a job on hold the way a hold looks between its two steps: the job record
// says held, its recipients are still due.
void mark_job_held(QueueStore& q, std::uint64_t id) {
    auto j = *q.job(id);
    j.state = JobState::held;
    q.env().transact([&](DbTxn* txn) { q.env().put(q.env().jobs(), txn, job_key(id), j.encode()); });
}

std::uint64_t count_of(QueueStore& q, std::uint64_t job, RcptState s) {
    return q.job(job)->counts[static_cast<int>(s)];
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

}  // namespace

class StoreTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreTest);
    CPPUNIT_TEST(job_ids);
    CPPUNIT_TEST(record_round_trip);
    CPPUNIT_TEST(intake_and_read_back);
    CPPUNIT_TEST(named_jobs_join);
    CPPUNIT_TEST(done_job_never_reopened);
    CPPUNIT_TEST(job_names_per_owner);
    CPPUNIT_TEST(large_text_in_chunks);
    CPPUNIT_TEST(due_index_order_and_range);
    CPPUNIT_TEST(claim_results_and_counts);
    CPPUNIT_TEST(expiry_and_suppression_at_claim);
    CPPUNIT_TEST(expiry_boundary_at_claim);
    CPPUNIT_TEST(inflight_recovery);
    CPPUNIT_TEST(flush_hold_release_delete);
    CPPUNIT_TEST(due_index_follows_every_write);
    CPPUNIT_TEST(reopen_keeps_everything);
    CPPUNIT_TEST(hold_keeps_what_comes_back_in_flight);
    CPPUNIT_TEST(claim_parks_recipients_of_a_held_job);
    CPPUNIT_TEST(held_in_flight_after_release_and_crash);
    CPPUNIT_TEST(damaged_record_at_claim);
    CPPUNIT_TEST(panic_is_a_store_panic);
    CPPUNIT_TEST(cursor_closed_during_unwinding);
    CPPUNIT_TEST(fatal_if_panic_exits);
    CPPUNIT_TEST(forced_deadlocks_leave_a_consistent_store);
    CPPUNIT_TEST_SUITE_END();

public:
    void job_ids() {
        CPPUNIT_ASSERT_EQUAL(std::string("J00002A"), format_job_id(42));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(42), *parse_job_id("J00002A"));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(42), *parse_job_id("j2a"));
        CPPUNIT_ASSERT(!parse_job_id("42"));
        CPPUNIT_ASSERT(!parse_job_id("J"));
        CPPUNIT_ASSERT(!parse_job_id("JXYZ"));
        CPPUNIT_ASSERT(!parse_job_id("J0"));
        CPPUNIT_ASSERT_EQUAL(std::string("deferred"), std::string(state_name(RcptState::deferred)));
        CPPUNIT_ASSERT(*parse_state("relayed") == RcptState::relayed);
        CPPUNIT_ASSERT(!parse_state("lost"));
    }

    void record_round_trip() {
        Recipient r;
        r.job_id = 7;
        r.seq = make_seq(3, 9);
        r.message_id = 3;
        r.address = "ann@example.test";
        r.fields = {"Ann", "x,y"};
        r.state = RcptState::deferred;
        r.attempts = 2;
        r.next_attempt = 1234567;
        r.reply_code = 451;
        r.dsn = "4.3.0";
        r.reply_text = "451 4.3.0 later";
        r.host = "mx[127.0.0.1]:25";
        Recipient back = Recipient::decode(r.key(), r.encode());
        CPPUNIT_ASSERT_EQUAL(r.address, back.address);
        CPPUNIT_ASSERT(back.fields == r.fields);
        CPPUNIT_ASSERT(back.state == RcptState::deferred);
        CPPUNIT_ASSERT_EQUAL(r.next_attempt, back.next_attempt);
        CPPUNIT_ASSERT_EQUAL(r.seq, back.seq);
        CPPUNIT_ASSERT_EQUAL(r.host, back.host);
        CPPUNIT_ASSERT(Recipient::due_key(r.key(), r.encode()).has_value());
        r.state = RcptState::delivered;
        CPPUNIT_ASSERT(!Recipient::due_key(r.key(), r.encode()).has_value());
        CPPUNIT_ASSERT_THROW(Recipient::decode(r.key(), r.encode().substr(0, 12)), CodecError);
    }

    void intake_and_read_back() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@one.test", "b@two.test", "c@one.test"}), 1000);
        CPPUNIT_ASSERT(res.new_job);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), res.recipients);
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT(job);
        CPPUNIT_ASSERT_EQUAL(std::string("news@sender.test"), job->sender);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), job->counts[0]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->messages);
        auto msgs = q.messages(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), msgs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: t\n\nhi\n"), q.text(msgs[0]));
        CPPUNIT_ASSERT_EQUAL(std::string("4Xq1"), msgs[0].host_queue_id);
        std::vector<std::string> seen;
        q.each_recipient(res.job_id, std::nullopt, [&](const Recipient& r) {
            seen.push_back(r.address);
            CPPUNIT_ASSERT(r.state == RcptState::queued);
            CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), r.next_attempt);
            return true;
        });
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), seen.size());
        CPPUNIT_ASSERT_EQUAL(std::string("a@one.test"), seen[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("c@one.test"), seen[2]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.jobs().size());
    }

    void named_jobs_join() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, intake("spring", {"a@x.test"}), 1000);
        auto b = add(q, intake("spring", {"b@x.test", "c@x.test"}), 2000);
        auto c = add(q, intake("", {"d@x.test"}), 3000);
        auto d = add(q, intake("", {"e@x.test"}), 3000);
        CPPUNIT_ASSERT_EQUAL(a.job_id, b.job_id);
        CPPUNIT_ASSERT(!b.new_job);
        CPPUNIT_ASSERT(c.job_id != a.job_id && d.job_id != c.job_id);
        auto job = q.job(a.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->messages);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), job->total());
        CPPUNIT_ASSERT_EQUAL(a.job_id, *q.job_by_name("spring"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.jobs().size());
    }

    // A finished job stays finished: a new message with its name starts a new job.
    void done_job_never_reopened() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, intake("spring", {"a@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)}).size());
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        auto b = add(q, intake("spring", {"b@x.test"}), 2000);
        CPPUNIT_ASSERT(b.new_job);
        CPPUNIT_ASSERT(b.job_id != a.job_id);
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), q.job(a.job_id)->total());
        CPPUNIT_ASSERT(q.job(b.job_id)->state == JobState::active);
        CPPUNIT_ASSERT_EQUAL(b.job_id, *q.job_by_name("spring"));  // the name now means the new job
        auto d = add(q, intake("spring", {"d@x.test"}), 3000);     // which later mail joins
        CPPUNIT_ASSERT_EQUAL(b.job_id, d.job_id);
    }

    // Two owners (senders, logins) using one job name get two jobs; both show the plain name.
    void job_names_per_owner() {
        TempDir dir;
        QueueStore q(dir.path());
        Intake ann = intake("spring", {"a@x.test"}), bob = intake("spring", {"b@x.test"});
        ann.job_owner = "ann@corp.test";
        bob.job_owner = "bob@corp.test";
        auto a1 = add(q, ann, 1000), b1 = add(q, bob, 1000), a2 = add(q, ann, 2000);
        CPPUNIT_ASSERT(a1.job_id != b1.job_id);
        CPPUNIT_ASSERT_EQUAL(a1.job_id, a2.job_id);
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), q.job(a1.job_id)->name);
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), q.job(b1.job_id)->name);
        auto plain = add(q, intake("spring", {"c@x.test"}), 3000);  // no owner (mxlanectl): a third
        CPPUNIT_ASSERT(plain.job_id != a1.job_id && plain.job_id != b1.job_id);
    }

    void large_text_in_chunks() {
        TempDir dir;
        QueueStore q(dir.path());
        std::string text = "Subject: big\n\n";
        for (int i = 0; text.size() < 300000; ++i) text += "line " + std::to_string(i) + "\n";
        auto res = add(q, intake("", {"a@x.test"}), 1, text);
        auto m = q.messages(res.job_id).at(0);
        CPPUNIT_ASSERT(m.chunks >= 5);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(text.size()), m.size);
        std::size_t pieces = 0;
        q.read_text(m, [&](std::string_view) { ++pieces; });
        CPPUNIT_ASSERT_EQUAL(std::size_t(m.chunks), pieces);
        CPPUNIT_ASSERT(q.text(m) == text);
    }

    void due_index_order_and_range() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"late@x.test"}), 9000);
        add(q, intake("", {"early@x.test"}), 1000);
        add(q, intake("", {"mid1@x.test", "mid2@x.test"}), 5000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), *q.next_due());
        // Only what is due by `until`, in time order.
        auto c = q.claim_due(5000, 100, 5000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("early@x.test"), c.due[0].address);
        CPPUNIT_ASSERT_EQUAL(std::string("mid1@x.test"), c.due[1].address);
        CPPUNIT_ASSERT_EQUAL(std::string("mid2@x.test"), c.due[2].address);
        // Claimed recipients left the due range: the next scan sees only the late one.
        auto c2 = q.claim_due(10000, 100, 10000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c2.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("late@x.test"), c2.due[0].address);
        CPPUNIT_ASSERT(q.claim_due(20000, 100, 20000, 0).due.empty());
        // The limit bounds a claim.
        TempDir dir2;
        QueueStore q2(dir2.path());
        add(q2, intake("", {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"}), 1);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q2.claim_due(10, 2, 10, 0).due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q2.claim_due(10, 10, 10, 0).due.size());
    }

    void claim_results_and_counts() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.inflight_count(res.job_id));
        std::vector<Outcome> out = {outcome(c.due[0], RcptState::delivered), outcome(c.due[1], RcptState::deferred, 8000)};
        auto finished = q.write_results(out);
        CPPUNIT_ASSERT(finished.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.inflight_count(res.job_id));
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::delivered)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::deferred)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::queued)]);
        auto b = q.recipient(res.job_id, c.due[1].seq);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(1), b->attempts);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(8000), b->next_attempt);
        CPPUNIT_ASSERT_EQUAL(std::string("451 4.3.0 later"), b->reply_text);
        // The deferred one comes due at its next attempt time.
        CPPUNIT_ASSERT(q.claim_due(7999, 10, 7999, 0).due.empty());
        auto again = q.claim_due(8000, 10, 8000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), again.due.size());
        finished = q.write_results(std::vector<Outcome>{outcome(again.due[0], RcptState::delivered),
                                                        outcome(c.due[2], RcptState::bounced)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), finished.size());
        CPPUNIT_ASSERT_EQUAL(res.job_id, finished[0]);
        job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::done);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::delivered)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::bounced)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), job->pending());
        CPPUNIT_ASSERT(!q.next_due());
    }

    void expiry_and_suppression_at_claim() {
        TempDir dir;
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.suppress("Dead@X.test", "550 5.1.1 gone", 1));
        CPPUNIT_ASSERT(!q.suppress("dead@x.test", "again", 2));
        auto res = add(q, intake("", {"dead@x.test", "old@x.test", "new@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c.suppressed.size());
        CPPUNIT_ASSERT_EQUAL(std::string("dead@x.test"), c.suppressed[0].address);
        // old is deferred, then its lifetime (3 s) runs out before its next attempt.
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::deferred, 2000),
                                             outcome(c.due[1], RcptState::deferred, 9000)});
        auto c2 = q.claim_due(5000, 10, 5000, 3000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c2.expired.size());
        CPPUNIT_ASSERT_EQUAL(std::string("old@x.test"), c2.expired[0].address);
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::suppressed)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::expired)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.suppressions().size());
        CPPUNIT_ASSERT(q.unsuppress("dead@x.test"));
        CPPUNIT_ASSERT(!q.is_suppressed("dead@x.test"));
        // A bounce with suppress set puts the address on the list in the same transaction.
        auto c3 = q.claim_due(9000, 10, 9000, 0);
        auto o = outcome(c3.due.at(0), RcptState::bounced);
        o.suppress = true;
        q.write_results(std::vector<Outcome>{o});
        CPPUNIT_ASSERT(q.is_suppressed("new@x.test"));
    }

    // A deferred recipient queued at 1000 with a 3 s lifetime: claimed at
    // 3999, expired by the claim at 4000, as lifetime_over says.
    void expiry_boundary_at_claim() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"old@x.test"}), 1000);
        auto first = q.claim_due(1000, 10, 1000, 3000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), first.due.at(0).queued_at);
        q.write_results(std::vector<Outcome>{outcome(first.due[0], RcptState::deferred, 2000)});
        CPPUNIT_ASSERT(!mxlane::lifetime_over(1000, 3999, 3000));
        auto before = q.claim_due(3999, 10, 3999, 3000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), before.due.size());
        CPPUNIT_ASSERT(before.expired.empty());
        q.write_results(std::vector<Outcome>{outcome(before.due[0], RcptState::deferred, 2000)});
        CPPUNIT_ASSERT(mxlane::lifetime_over(1000, 4000, 3000));
        auto at = q.claim_due(4000, 10, 4000, 3000);
        CPPUNIT_ASSERT(at.due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), at.expired.size());
        CPPUNIT_ASSERT(at.expired[0].state == RcptState::expired);
    }

    void inflight_recovery() {
        TempDir dir;
        {
            QueueStore q(dir.path());
            add(q, intake("", {"a@x.test", "b@x.test"}), 1000);
            auto c = q.claim_due(1000, 10, 1000, 0);
            CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
            q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)});
            // b stays in flight: its process "dies" here.
        }
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.claim_due(2000, 10, 2000, 0).due.empty());  // in flight: not due
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.recover_inflight(2000));
        auto c = q.claim_due(2000, 10, 2000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("b@x.test"), c.due[0].address);
    }

    void flush_hold_release_delete() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("j", {"a@x.test", "b@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::deferred, 900000),
                                             outcome(c.due[1], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT(q.claim_due(2000, 10, 2000, 0).due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.flush(res.job_id, 2000));
        auto due = q.claim_due(2000, 10, 2000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), due.due.size());
        q.write_results(std::vector<Outcome>{outcome(due.due[0], RcptState::deferred, 900000),
                                             outcome(due.due[1], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.hold(res.job_id));
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::held);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::held)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.flush(std::nullopt, 3000));  // held ones are not flushed
        CPPUNIT_ASSERT(q.claim_due(999999, 10, 3000, 0).due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.release(res.job_id, 4000));
        job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::active);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::deferred)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.claim_due(4000, 10, 4000, 0).due.size());
        q.remove_job(res.job_id);
        CPPUNIT_ASSERT(!q.job(res.job_id));
        CPPUNIT_ASSERT(q.jobs().empty());
        CPPUNIT_ASSERT(!q.job_by_name("j"));
        CPPUNIT_ASSERT(!q.next_due());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.inflight_count(0));
    }

    // The due index is kept by hand: each write that moves a recipient in or out
    // of it must leave exactly one entry for each pending recipient not in flight.
    void due_index_follows_every_write() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("k", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        auto c = q.claim_due(1000, 2, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.scanned);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        // c stays due at 1000; a and b are in flight and out of the index.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), *q.next_due());
        auto rest = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), rest.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("c@x.test"), rest.due[0].address);
        CPPUNIT_ASSERT(!q.next_due());
        // Results: the deferred one comes back at its time, the others never.
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered),
                                             outcome(c.due[1], RcptState::deferred, 5000),
                                             outcome(rest.due[0], RcptState::bounced)});
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5000), *q.next_due());
        // Hold takes it out, release puts it back at the release time, flush moves it.
        q.hold(res.job_id);
        CPPUNIT_ASSERT(!q.next_due());
        q.release(res.job_id, 7000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7000), *q.next_due());
        auto again = q.claim_due(7000, 10, 7000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), again.due.size());
        q.write_results(std::vector<Outcome>{outcome(again.due[0], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.flush(res.job_id, 8000));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(8000), *q.next_due());
        // Deleting a job with a pending recipient leaves no entry behind.
        q.remove_job(res.job_id);
        CPPUNIT_ASSERT(!q.next_due());
        CPPUNIT_ASSERT(q.claim_due(999999, 10, 999999, 0).due.empty());
    }

    void reopen_keeps_everything() {
        TempDir dir;
        std::uint64_t id;
        {
            QueueStore q(dir.path());
            id = add(q, intake("", {"a@x.test"}), 1000).job_id;
        }
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.job(id));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), q.job(id)->total());
        auto id2 = add(q, intake("", {"b@x.test"}), 1000).job_id;
        CPPUNIT_ASSERT(id2 > id);  // ids are not reused after a reopen
    }

    // hold() while the qrunner delivers: what comes back undecided stays held
    // (no due entry), what the wire decided is written; release makes them due.
    void hold_keeps_what_comes_back_in_flight() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("h", {"a@x.test", "b@x.test", "c@x.test", "d@x.test"}), 1000);
        auto other = add(q, intake("", {"e@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), q.hold(res.job_id));
        CPPUNIT_ASSERT(q.held_jobs() == std::vector<std::uint64_t>{res.job_id});
        auto put_back = outcome(c.due[2], RcptState::queued, 1500);
        put_back.count_attempt = false;
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered),
                                             outcome(c.due[1], RcptState::deferred, 9000), put_back,
                                             outcome(c.due[3], RcptState::bounced),
                                             outcome(c.due[4], RcptState::deferred, 9000)});
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[0].seq)->state == RcptState::delivered);
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[1].seq)->state == RcptState::held);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(1), q.recipient(res.job_id, c.due[1].seq)->attempts);
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[2].seq)->state == RcptState::held);
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[3].seq)->state == RcptState::bounced);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), count_of(q, res.job_id, RcptState::held));
        CPPUNIT_ASSERT(q.job(res.job_id)->state == JobState::held);
        // Only the other job's deferral is in the due index.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(9000), *q.next_due());
        auto later = q.claim_due(9000, 10, 9000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), later.due.size());
        CPPUNIT_ASSERT_EQUAL(other.job_id, later.due[0].job_id);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.release(res.job_id, 10000));
        CPPUNIT_ASSERT(q.held_jobs().empty());
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[1].seq)->state == RcptState::deferred);
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[2].seq)->state == RcptState::queued);
        auto again = q.claim_due(10000, 10, 10000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), again.due.size());
    }

    // A job held between hold()'s two steps (or by another process): a claim
    // parks its recipients as held instead of handing them to delivery.
    void claim_parks_recipients_of_a_held_job() {
        TempDir dir;
        QueueStore q(dir.path());
        auto held = add(q, intake("held", {"a@x.test", "b@x.test"}), 1000);
        auto free = add(q, intake("free", {"c@x.test"}), 1000);
        mark_job_held(q, held.job_id);
        CPPUNIT_ASSERT(q.held_jobs() == std::vector<std::uint64_t>{held.job_id});
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), c.scanned);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c.due.size());
        CPPUNIT_ASSERT_EQUAL(free.job_id, c.due[0].job_id);
        CPPUNIT_ASSERT(c.expired.empty() && c.suppressed.empty());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), count_of(q, held.job_id, RcptState::held));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.inflight_count(held.job_id));
        CPPUNIT_ASSERT(!q.next_due());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.release(held.job_id, 2000));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.claim_due(2000, 10, 2000, 0).due.size());
    }

    // Held in flight, released before its result: the result decides (the job is
    // active again); with no result (the qrunner died), the next start makes it due.
    void held_in_flight_after_release_and_crash() {
        TempDir dir;
        std::uint64_t job;
        {
            QueueStore q(dir.path());
            job = add(q, intake("r", {"a@x.test", "b@x.test"}), 1000).job_id;
            auto c = q.claim_due(1000, 10, 1000, 0);
            q.hold(job);
            CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.release(job, 2000));  // both in delivery: not made due
            CPPUNIT_ASSERT(!q.next_due());
            q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::deferred, 5000)});
            CPPUNIT_ASSERT(q.recipient(job, c.due[0].seq)->state == RcptState::deferred);
            CPPUNIT_ASSERT_EQUAL(std::int64_t(5000), *q.next_due());
            // b's result never comes: the process dies.
        }
        QueueStore q(dir.path());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.recover_inflight(6000));
        auto c = q.claim_due(6000, 10, 6000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), count_of(q, job, RcptState::held));
    }

    // A recipient record that cannot be decoded does not stop a claim: it is left
    // in flight (logged) and the others are claimed.
    void damaged_record_at_claim() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        std::vector<Recipient> all;
        q.each_recipient(res.job_id, std::nullopt, [&](const Recipient& r) {
            all.push_back(r);
            return true;
        });
        // Garbage that keeps its due entry: the entry was made from the good record.
        damage(q, all[1]);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.inflight_count(res.job_id));
        CPPUNIT_ASSERT(!q.next_due());
        // At the next start it stays in flight too; the good ones are taken back.
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.recover_inflight(2000));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.inflight_count(res.job_id));
    }

    void panic_is_a_store_panic() {
        PanicLeaksIgnored ignored;
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"a@x.test"}), 1000);
        q.env().panic_for_test();
        CPPUNIT_ASSERT_THROW(q.jobs(), StorePanic);
        CPPUNIT_ASSERT(q.env().panicked());
        CPPUNIT_ASSERT_THROW(q.claim_due(1000, 10, 1000, 0), StorePanic);
    }

    // A cursor open when the environment fails: its close throws too, during the
    // unwinding of the first error; the guard must swallow it (no terminate).
    void cursor_closed_during_unwinding() {
        PanicLeaksIgnored ignored;
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"a@x.test"}), 1000);
        add(q, intake("", {"b@x.test"}), 1000);
        add(q, intake("", {"c@x.test"}), 1000);
        int seen = 0;
        CPPUNIT_ASSERT_THROW(q.env().transact([&](DbTxn* txn) {
            detail::scan(q.env().jobs(), txn, std::string(), std::string(), [&](const std::string&, const std::string&) {
                if (++seen == 1) q.env().panic_for_test();
                return true;
            });
        }),
                             StorePanic);
        CPPUNIT_ASSERT_EQUAL(1, seen);
    }

    // fatal_if_panic: one "fatal:" line and exit status 1 for a panic, nothing otherwise.
    void fatal_if_panic_exits() {
        TempDir dir;
        int fds[2];
        CPPUNIT_ASSERT(pipe(fds) == 0);
        pid_t child = fork();
        if (child == 0) {
            PanicLeaksIgnored ignored;
            dup2(fds[1], 2);
            close(fds[0]);
            mxlane::log::open_stderr("test");
            QueueStore q(dir.path());
            fatal_if_panic(StoreError("an ordinary error"));  // returns
            q.env().panic_for_test();
            try {
                q.jobs();
            } catch (const std::exception& e) {
                fatal_if_panic(e);
            }
            _exit(0);
        }
        close(fds[1]);
        std::string err;
        char buf[512];
        ssize_t n;
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<std::size_t>(n));
        close(fds[0]);
        int status = 0;
        waitpid(child, &status, 0);
        CPPUNIT_ASSERT(WIFEXITED(status));
        CPPUNIT_ASSERT_EQUAL(1, WEXITSTATUS(status));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("fatal: ") != std::string::npos);
        CPPUNIT_ASSERT_MESSAGE(err, err.find("restart runs recovery") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), static_cast<std::size_t>(std::count(err.begin(), err.end(), '\n')));
    }

    // Intake, claims and results at once on three threads, every lock conflict
    // failing at once as a deadlock does, so that retries are routine: every retry must leave nothing behind
    // (run under ASan/LSan: no leak) and the store must end consistent.
    void forced_deadlocks_leave_a_consistent_store() {
        TempDir dir;
        QueueStore q(dir.path());
        q.env().set_lock_nowait(true);
        constexpr int kMessages = 300, kPer = 5;
        std::atomic<bool> intake_done{false}, claims_done{false};
        std::mutex mu;
        std::deque<Recipient> claimed;
        std::string failure;
        auto guard = [&](auto f) {
            return [&, f] {
                try {
                    f();
                } catch (const std::exception& e) {
                    std::lock_guard lock(mu);
                    failure += std::string(e.what()) + "; ";
                    intake_done = claims_done = true;
                }
            };
        };
        std::uint64_t job = add(q, intake("hammer", {"first@x.test"}), 1000).job_id;
        std::thread intake_thread(guard([&] {
            for (int m = 0; m < kMessages; ++m) {
                Intake in = intake("hammer", {});
                for (int r = 0; r < kPer; ++r)
                    in.recipients.push_back({"m" + std::to_string(m) + "r" + std::to_string(r) + "@x.test", {}});
                add(q, in, 1000);
            }
            intake_done = true;
        }));
        std::thread claim_thread(guard([&] {
            for (;;) {
                const bool last = intake_done;  // read before the claim: nothing added after it
                auto c = q.claim_due(now_ms(), 50, now_ms(), 0);
                {
                    std::lock_guard lock(mu);
                    for (auto& r : c.due) claimed.push_back(std::move(r));
                }
                if (c.due.empty()) {
                    if (last && q.inflight_count(0) == 0 && !q.next_due()) break;
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
            }
            claims_done = true;
        }));
        std::thread result_thread(guard([&] {
            for (;;) {
                std::vector<Outcome> batch;
                {
                    std::lock_guard lock(mu);
                    while (!claimed.empty() && batch.size() < 20) {
                        const Recipient& r = claimed.front();
                        // First attempt deferred (due again at once), the second delivered.
                        batch.push_back(r.attempts == 0 ? outcome(r, RcptState::deferred, 0)
                                                        : outcome(r, RcptState::delivered));
                        claimed.pop_front();
                    }
                }
                if (!batch.empty()) q.write_results(batch);
                else if (claims_done) break;
                else std::this_thread::sleep_for(std::chrono::microseconds(500));
            }
        }));
        intake_thread.join();
        claim_thread.join();
        result_thread.join();
        CPPUNIT_ASSERT_MESSAGE(failure, failure.empty());
        // A job that finishes while intake goes on is never reopened: the name
        // then starts another job, so the counts are summed over the jobs.
        const std::uint64_t total = kMessages * kPer + 1;
        std::uint64_t all = 0, delivered = 0;
        std::size_t delivered_twice_tried = 0;
        for (const auto& j : q.jobs()) {
            CPPUNIT_ASSERT(j.state == JobState::done);
            all += j.total();
            delivered += j.counts[static_cast<int>(RcptState::delivered)];
            q.each_recipient(j.id, std::nullopt, [&](const Recipient& r) {
                if (r.state == RcptState::delivered && r.attempts == 2) ++delivered_twice_tried;
                return true;
            });
        }
        CPPUNIT_ASSERT(q.job(job));
        CPPUNIT_ASSERT_EQUAL(total, all);
        CPPUNIT_ASSERT_EQUAL(total, delivered);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.inflight_count(0));
        CPPUNIT_ASSERT_EQUAL(std::size_t(total), delivered_twice_tried);
        std::cerr << " [" << q.env().deadlocks() << " deadlocks retried] ";
        CPPUNIT_ASSERT(q.env().deadlocks() > 0);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreTest);
// The qrunner's result writer on a real store.
class ResultWriterTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ResultWriterTest);
    CPPUNIT_TEST(damaged_record_is_set_aside);
    CPPUNIT_TEST(transient_errors_back_off);
    CPPUNIT_TEST_SUITE_END();

    struct Counted {
        std::atomic<std::size_t> written{0};
        std::atomic<std::size_t> finished{0};
        mxlane::qrunner::ResultWriter::Written callback() {
            return [this](std::size_t n, const std::vector<std::uint64_t>& done) {
                written += n;
                finished += done.size();
            };
        }
    };

public:
    // One damaged record in a batch: it is set aside (left in flight, logged),
    // every other result of the batch and after it is written.
    void damaged_record_is_set_aside() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@x.test", "b@x.test", "c@x.test", "d@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), c.due.size());
        damage(q, c.due[1]);
        boost::asio::thread_pool callbacks(1);
        Counted counted;
        mxlane::qrunner::ResultWriter writer(q, callbacks.get_executor(), counted.callback());
        writer.add(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered), outcome(c.due[1], RcptState::delivered),
                                        outcome(c.due[2], RcptState::delivered)});
        CPPUNIT_ASSERT(wait_until([&] { return counted.written == 3; }));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), writer.set_aside());
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[0].seq)->state == RcptState::delivered);
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[2].seq)->state == RcptState::delivered);
        // Later results are not held back.
        writer.add(outcome(c.due[3], RcptState::delivered));
        CPPUNIT_ASSERT(wait_until([&] { return counted.written == 4; }));
        CPPUNIT_ASSERT(q.recipient(res.job_id, c.due[3].seq)->state == RcptState::delivered);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.inflight_count(res.job_id));  // the damaged one, for the admin
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), count_of(q, res.job_id, RcptState::delivered));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), writer.pending());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), writer.transient_failures());
        callbacks.join();
    }

    // The store locked by another transaction: the writer's tries fail fast
    // (one attempt, no lock wait) and back off 50, 100, 200 ms... however
    // many results arrive meanwhile; once the lock goes, everything is written.
    void transient_errors_back_off() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        q.env().set_max_attempts(1);
        std::atomic<bool> locked{false};
        std::thread holder([&] {
            q.env().transact([&](DbTxn* txn) {
                q.env().get(q.env().recipients(), txn, c.due[0].key(), DB_RMW);  // write-locks the page
                locked = true;
                std::this_thread::sleep_for(std::chrono::milliseconds(700));
            });
        });
        CPPUNIT_ASSERT(wait_until([&] { return locked.load(); }));
        boost::asio::thread_pool callbacks(1);
        Counted counted;
        mxlane::qrunner::ResultWriter writer(q, callbacks.get_executor(), counted.callback(),
                                             {std::chrono::milliseconds(50), std::chrono::milliseconds(1000)});
        q.env().set_lock_nowait(true);  // the writer's tries fail at once
        writer.add(outcome(c.due[0], RcptState::delivered));
        // A result every 5 ms while the lock is held: none of them may bring a try forward.
        for (int i = 0; i < 100 && locked; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            if (i == 20) writer.add(outcome(c.due[1], RcptState::delivered));
            if (i == 60) writer.add(outcome(c.due[2], RcptState::delivered));
        }
        holder.join();
        q.env().set_lock_nowait(false);
        q.env().set_max_attempts(50);
        CPPUNIT_ASSERT(wait_until([&] { return counted.written == 3; }));
        // 700 ms held: tries at about 0, 50, 150, 350 and 750 ms; re-armed by each add it would be dozens.
        std::cerr << " [" << writer.transient_failures() << " failed tries, " << q.env().deadlocks() << " conflicts] ";
        CPPUNIT_ASSERT(writer.transient_failures() >= 2);
        CPPUNIT_ASSERT(writer.transient_failures() <= 6);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), writer.set_aside());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), count_of(q, c.due[0].job_id, RcptState::delivered));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), counted.finished.load());
        callbacks.join();
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ResultWriterTest);

