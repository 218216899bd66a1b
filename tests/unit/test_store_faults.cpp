// test_store_faults: the store under faults: jobs held in flight, damaged records, panics, forced lock
// conflicts on three threads; and the qrunner's result writer (isolation, backoff).
#include <cppunit/extensions/HelperMacros.h>

#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;

class StoreFaultTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreFaultTest);
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

CPPUNIT_TEST_SUITE_REGISTRATION(StoreFaultTest);

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

