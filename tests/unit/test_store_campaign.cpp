// test_store_campaign: keyed jobs: messages join while the job is open, idle close, the next job's suffix, done only once closed.
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;

class StoreCampaignTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreCampaignTest);
    CPPUNIT_TEST(open_job_takes_messages_until_idle);
    CPPUNIT_TEST(done_only_once_closed);
    CPPUNIT_TEST(closed_job_stays_closed);
    CPPUNIT_TEST(old_name_records_read);
    CPPUNIT_TEST(messages_from_another_process_count);
    CPPUNIT_TEST_SUITE_END();

    static Intake keyed(std::initializer_list<const char*> rcpts) {
        Intake in = intake("news <list.shop.test>", rcpts);
        in.job_owner = "news@sender.test";
        in.open_ms = 2000;
        return in;
    }

public:
    void open_job_takes_messages_until_idle() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, keyed({"a@x.test"}), 10000);
        auto b = add(q, keyed({"b@x.test"}), 11500);
        auto c = add(q, keyed({"c@x.test"}), 13500);  // 2000 after the last message: still open
        CPPUNIT_ASSERT(a.new_job && !b.new_job && !c.new_job);
        CPPUNIT_ASSERT_EQUAL(a.job_id, c.job_id);
        auto d = add(q, keyed({"d@x.test"}), 15501);  // idle longer than open_ms: a new job
        CPPUNIT_ASSERT(d.new_job);
        CPPUNIT_ASSERT_EQUAL(std::string("news <list.shop.test> #2"), q.job(d.job_id)->name);
        CPPUNIT_ASSERT_EQUAL(std::string("news <list.shop.test>"), q.job(a.job_id)->name);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), q.job(a.job_id)->messages);
        auto e = add(q, keyed({"e@x.test"}), 16000);
        CPPUNIT_ASSERT_EQUAL(d.job_id, e.job_id);
        auto f = add(q, keyed({"f@x.test"}), 30000);
        CPPUNIT_ASSERT_EQUAL(std::string("news <list.shop.test> #3"), q.job(f.job_id)->name);
    }

    // Another process adding to the job (as mxlanectl submit does beside the milter): the
    // milter remembers only its own intakes, and the job's last message is whichever came last.
    void messages_from_another_process_count() {
        TempDir dir;
        // The other process starts before this one opens the store, and adds what it is sent.
        int to_other[2], from_other[2];
        CPPUNIT_ASSERT(pipe(to_other) == 0 && pipe(from_other) == 0);
        pid_t other = fork();
        if (other == 0) {
            try {
                close(to_other[1]);
                close(from_other[0]);
                QueueStore q(dir.path());
                std::int64_t now = 0;
                while (read(to_other[0], &now, sizeof now) == sizeof now) {
                    add(q, keyed({"other@x.test"}), now);
                    if (write(from_other[1], "k", 1) != 1) _exit(1);
                }
                _exit(0);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "the other process: %s\n", e.what());
                _exit(1);
            }
        }
        close(to_other[0]);
        close(from_other[1]);
        auto in_other_process = [&](std::int64_t now) {
            char ok = 0;
            CPPUNIT_ASSERT(write(to_other[1], &now, sizeof now) == sizeof now);
            CPPUNIT_ASSERT(read(from_other[0], &ok, 1) == 1);
        };
        QueueStore milter(dir.path());
        auto a = add(milter, keyed({"a@x.test"}), 10000);
        in_other_process(11900);
        auto c = add(milter, keyed({"c@x.test"}), 13500);  // 3500 after its own, 1600 after the other's: joins
        CPPUNIT_ASSERT_EQUAL(a.job_id, c.job_id);
        auto e = add(milter, keyed({"e@x.test"}), 15400);  // 1900 after its own
        CPPUNIT_ASSERT_EQUAL(a.job_id, e.job_id);
        close(to_other[1]);
        int status = 0;
        waitpid(other, &status, 0);
        CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(4), milter.job(a.job_id)->messages);
        CPPUNIT_ASSERT(milter.close_idle_jobs(17401).empty());
        CPPUNIT_ASSERT(milter.job(a.job_id)->closed);
        // Closed is closed, however recent this process's own last intake (a clock behind the closer's).
        auto f = add(milter, keyed({"f@x.test"}), 16000);
        CPPUNIT_ASSERT(f.new_job);
    }

    // All delivered while open: not done (no summary yet); done when closed.
    void done_only_once_closed() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, keyed({"a@x.test"}), 10000);
        auto c = q.claim_due(10000, 10, 10000, 0);
        CPPUNIT_ASSERT(q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)}).empty());
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::active);
        CPPUNIT_ASSERT(q.close_idle_jobs(11000).empty());  // not idle yet
        auto b = add(q, keyed({"b@x.test"}), 11000);    // joins the job that had nothing left
        CPPUNIT_ASSERT_EQUAL(a.job_id, b.job_id);
        CPPUNIT_ASSERT(q.close_idle_jobs(13100).empty());  // idle, but b is still to deliver
        CPPUNIT_ASSERT(q.job(a.job_id)->closed);
        c = q.claim_due(13100, 10, 13100, 0);
        auto done = q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), done.size());
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), q.job(a.job_id)->total());
    }

    void closed_job_stays_closed() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, keyed({"a@x.test"}), 10000);
        auto c = q.claim_due(10000, 10, 10000, 0);
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)});
        CPPUNIT_ASSERT(q.close_idle_jobs(12001) == std::vector<std::uint64_t>{a.job_id});
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        CPPUNIT_ASSERT(q.close_idle_jobs(20000).empty());  // once
        // A message whose clock says the job would still be open: the job is closed all the same.
        auto b = add(q, keyed({"b@x.test"}), 11000);
        CPPUNIT_ASSERT(b.new_job);
        CPPUNIT_ASSERT_EQUAL(std::string("news <list.shop.test> #2"), q.job(b.job_id)->name);
    }

    // A name record from before keyed jobs (a job id alone) still finds its job.
    void old_name_records_read() {
        TempDir dir;
        QueueStore q(dir.path());
        Intake plain = keyed({"a@x.test"});
        plain.open_ms = 0;
        auto a = add(q, plain, 10000);
        auto b = add(q, keyed({"b@x.test"}), 10500);
        CPPUNIT_ASSERT_EQUAL(a.job_id, b.job_id);  // an open job without open_ms: joins until done
        CPPUNIT_ASSERT(q.job(a.job_id)->open_ms == 0);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreCampaignTest);
