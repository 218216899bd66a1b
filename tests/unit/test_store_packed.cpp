// test_store_packed: recipients packed at intake: the writes an intake costs, readers that see them, expansion once, a kill mid-expansion.
#include <cppunit/extensions/HelperMacros.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "libshared/store/scan.hpp"
#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;

namespace {

std::size_t records(QueueStore& q, Db& db) {
    return q.env().transact([&](DbTxn* txn) {
        std::size_t n = 0;
        detail::scan(db, txn, std::string(), std::string(), [&](const std::string&, const std::string&) {
            ++n;
            return true;
        });
        return n;
    });
}

Intake numbered(const std::string& name, int message, int rcpts) {
    Intake in;
    in.job_name = name;
    in.sender = "news@sender.test";
    for (int r = 0; r < rcpts; ++r)
        in.recipients.push_back({"m" + std::to_string(message) + "-r" + std::to_string(r) + "@x.test", {}});
    return in;
}

// Every address the job's records hold, with how many records hold it.
std::map<std::string, int> addresses(QueueStore& q, std::uint64_t job) {
    std::map<std::string, int> out;
    q.each_recipient(job, std::nullopt, [&](const Recipient& r) {
        ++out[r.address];
        return true;
    });
    return out;
}

}  // namespace

class StorePackedTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StorePackedTest);
    CPPUNIT_TEST(intake_writes_a_handful);
    CPPUNIT_TEST(readers_see_packed_recipients);
    CPPUNIT_TEST(expanded_once_and_claimed_once);
    CPPUNIT_TEST(delete_takes_packed_recipients);
    CPPUNIT_TEST(killed_mid_expansion);
    CPPUNIT_TEST_SUITE_END();

public:
    // A message joining a job: text, message, packed recipients, counters, whatever
    // its recipient count; written out per recipient (over kPackedMax) it is 2 per recipient more.
    void intake_writes_a_handful() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, numbered("w", 0, 1), 1000);
        for (int n : {1, 10, 1000}) {
            auto before = q.env().writes();
            add(q, numbered("w", n, n), 1000);
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(4), q.env().writes() - before);
        }
        const int big = static_cast<int>(QueueStore::kPackedMax) + 1;
        auto before = q.env().writes();
        add(q, numbered("w", big, big), 1000);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3 + 2 * big), q.env().writes() - before);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), records(q, q.env().packed()));  // the big one is not packed
    }

    void readers_see_packed_recipients() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("r", {"a@one.test", "b@two.test"}), 1000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), records(q, q.env().packed()));
        // Counters are right before any expansion (mxlanectl jobs reads only them).
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), q.job(res.job_id)->counts[0]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().recipients()));
        auto r = q.recipient(res.job_id, make_seq(res.message_id, 1));
        CPPUNIT_ASSERT(r);
        CPPUNIT_ASSERT_EQUAL(std::string("b@two.test"), r->address);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), r->queued_at);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().packed()));
        // A hold expands first, so it parks the recipients of a message not yet expanded.
        auto res2 = add(q, intake("r", {"c@one.test"}), 2000);
        CPPUNIT_ASSERT_EQUAL(res.job_id, res2.job_id);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.hold(res.job_id));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), count_of(q, res.job_id, RcptState::held));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().due()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.release(res.job_id, 3000));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), addresses(q, res.job_id).size());
    }

    void expanded_once_and_claimed_once() {
        TempDir dir;
        QueueStore q(dir.path());
        std::uint64_t job = 0;
        for (int m = 0; m < 30; ++m) job = add(q, numbered("e", m, 100), 1000 + m).job_id;
        CPPUNIT_ASSERT_EQUAL(std::size_t(3000), q.expand_packed());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.expand_packed());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3000), records(q, q.env().due()));
        add(q, numbered("e", 30, 5), 5000);  // the claim expands it itself
        auto claim = q.claim_due(10000, 10000, 10000, 3600000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3005), claim.due.size());
        std::map<std::string, int> seen;
        for (const auto& r : claim.due) ++seen[r.address];
        CPPUNIT_ASSERT_EQUAL(std::size_t(3005), seen.size());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3005), q.job(job)->counts[0]);
    }

    void delete_takes_packed_recipients() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("d", {"a@one.test", "b@two.test"}), 1000);
        q.remove_job(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().packed()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.expand_packed());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().recipients()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), records(q, q.env().due()));
    }

    // A process expanding a big backlog is killed with SIGKILL at several moments:
    // afterwards every message is either still packed or wholly expanded, and what
    // is finally claimed holds each recipient exactly once.
    void killed_mid_expansion() {
        constexpr int kMessages = 400, kPer = 25;
        for (int delay_ms : {0, 20, 60, 150}) {
            TempDir dir;
            std::uint64_t job = 0;
            {
                QueueStore q(dir.path());
                for (int m = 0; m < kMessages; ++m) job = add(q, numbered("k", m, kPer), 1000).job_id;
            }
            pid_t child = fork();
            if (child == 0) {
                try {
                    QueueStore q(dir.path());
                    q.expand_packed();
                } catch (...) {
                    _exit(2);
                }
                _exit(0);
            }
            ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
            ::kill(child, SIGKILL);
            int status = 0;
            waitpid(child, &status, 0);
            QueueStore q(dir.path());  // recovery runs here
            const std::size_t packed = records(q, q.env().packed());
            const std::size_t expanded = records(q, q.env().recipients());
            CPPUNIT_ASSERT_EQUAL(std::size_t(kMessages * kPer), packed * kPer + expanded);
            CPPUNIT_ASSERT_EQUAL(expanded, records(q, q.env().due()));
            auto claim = q.claim_due(2000, kMessages * kPer + 1, 2000, 3600000);
            std::map<std::string, int> seen;
            for (const auto& r : claim.due) ++seen[r.address];
            CPPUNIT_ASSERT_EQUAL(std::size_t(kMessages * kPer), claim.due.size());
            CPPUNIT_ASSERT_EQUAL(std::size_t(kMessages * kPer), seen.size());
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(kMessages * kPer), q.job(job)->counts[0]);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StorePackedTest);
