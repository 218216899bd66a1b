// test_store_intake: concurrent intakes share group transactions (gathered while many are under
// way); one refused message fails alone.
#include <cppunit/extensions/HelperMacros.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "libshared/store/queue_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane::store;
using mxlane::test::TempDir;

namespace {

// A message text whose reading fails half-way (as a broken connection would).
class FailingText : public std::streambuf {
protected:
    int_type underflow() override { throw std::runtime_error("connection lost"); }
};

Intake campaign(const std::string& rcpt) {
    Intake in;
    in.job_name = "spring";
    in.job_owner = "news@sender.test";
    in.open_ms = 600000;
    in.sender = "news@sender.test";
    in.recipients.push_back({rcpt, {}});
    return in;
}

std::size_t message_count(QueueStore& q, std::uint64_t job) { return q.messages(job).size(); }

// Message i of the campaign, from a caller with `concurrent` intakes under way.
void add_under_way(QueueStore& q, int i, unsigned concurrent) {
    Intake in = campaign("r" + std::to_string(i) + "@x.test");
    in.concurrent = concurrent;
    std::istringstream text("Subject: spring\n\nbody\n");
    q.add_message(in, text, now_ms());
}

// A store whose gathering leaders wait up to a minute (so that a wait is certain), and the
// intake groups it had run when the test began.
struct SlowGathering {
    TempDir dir;
    QueueStore q{dir.path()};
    std::uint64_t groups;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    SlowGathering() {
        q.set_gather_wait_for_test(std::chrono::minutes(1));
        groups = q.intake_groups();
    }
    // Well before a gathering leader would have given up waiting.
    bool quick() const { return std::chrono::steady_clock::now() - start < std::chrono::seconds(30); }
};

void wait_for_waiting(QueueStore& q, std::size_t n) {
    for (int i = 0; i < 5000 && q.intakes_waiting_for_test() < n; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CPPUNIT_ASSERT_EQUAL(n, q.intakes_waiting_for_test());
}

}  // namespace

class StoreIntakeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreIntakeTest);
    CPPUNIT_TEST(waiting_intakes_run_as_one_group);
    CPPUNIT_TEST(a_refused_message_fails_alone);
    CPPUNIT_TEST(concurrent_intakes_share_transactions);
    CPPUNIT_TEST(many_under_way_gather_into_one_group);
    CPPUNIT_TEST(few_under_way_never_wait);
    CPPUNIT_TEST_SUITE_END();

public:
    void waiting_intakes_run_as_one_group() {
        TempDir dir;
        QueueStore q(dir.path());
        q.hold_intake_groups_for_test(true);
        std::vector<IntakeResult> results(5);
        std::vector<std::thread> threads;
        for (int i = 0; i < 5; ++i)
            threads.emplace_back([&, i] {
                std::istringstream text("Subject: spring\n\nbody " + std::to_string(i) + "\n");
                results[i] = q.add_message(campaign("r" + std::to_string(i) + "@x.test"), text, now_ms());
            });
        wait_for_waiting(q, 5);
        const auto groups = q.intake_groups();
        q.hold_intake_groups_for_test(false);
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(groups + 1, q.intake_groups());
        // One job (the first message of the group started it, the others joined it
        // inside the same transaction), five messages, each with its own text.
        int created = 0;
        for (const auto& r : results) {
            CPPUNIT_ASSERT_EQUAL(results[0].job_id, r.job_id);
            created += r.new_job;
        }
        CPPUNIT_ASSERT_EQUAL(1, created);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), message_count(q, results[0].job_id));
        for (int i = 0; i < 5; ++i) {
            auto text = q.text(*q.message(results[i].job_id, results[i].message_id));
            CPPUNIT_ASSERT(text.find("body " + std::to_string(i)) != std::string::npos);
        }
    }

    void a_refused_message_fails_alone() {
        TempDir dir;
        QueueStore q(dir.path());
        q.hold_intake_groups_for_test(true);
        std::vector<std::optional<IntakeResult>> results(4);
        std::string refused;
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i)
            threads.emplace_back([&, i] {
                FailingText broken;
                std::istream bad(&broken);
                std::istringstream good("Subject: spring\n\nbody\n");
                try {
                    results[i] = q.add_message(campaign("r" + std::to_string(i) + "@x.test"),
                                               i == 2 ? static_cast<std::istream&>(bad) : good, now_ms());
                } catch (const StoreError& e) {
                    refused = e.what();
                }
            });
        wait_for_waiting(q, 4);
        q.hold_intake_groups_for_test(false);
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(std::string("cannot read the message text"), refused);
        CPPUNIT_ASSERT(!results[2]);
        std::uint64_t job = 0;
        for (int i : {0, 1, 3}) {
            CPPUNIT_ASSERT(results[i]);
            job = results[i]->job_id;
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), message_count(q, job));
        std::size_t rcpts = 0;
        q.each_recipient(job, std::nullopt, [&](const Recipient& r) {
            CPPUNIT_ASSERT(r.address != "r2@x.test");
            ++rcpts;
            return true;
        });
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), rcpts);
    }

    void concurrent_intakes_share_transactions() {
        TempDir dir;
        QueueStore q(dir.path());
        constexpr int kThreads = 8, kEach = 40;
        const auto groups = q.intake_groups();
        std::vector<std::thread> threads;
        std::vector<std::uint64_t> jobs(kThreads);
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < kEach; ++i) {
                    std::istringstream text("Subject: spring\n\nbody\n");
                    jobs[t] = q.add_message(campaign("r" + std::to_string(t * kEach + i) + "@x.test"), text, now_ms()).job_id;
                }
            });
        for (auto& t : threads) t.join();
        for (auto j : jobs) CPPUNIT_ASSERT_EQUAL(jobs[0], j);
        CPPUNIT_ASSERT_EQUAL(std::size_t(kThreads * kEach), message_count(q, jobs[0]));
        // Every intake waits for the disk; those that arrive meanwhile are one group.
        const auto used = q.intake_groups() - groups;
        CPPUNIT_ASSERT_MESSAGE(std::to_string(used) + " groups", used < std::uint64_t(kThreads * kEach));
        CPPUNIT_ASSERT(used > 0);
    }

    // Six intakes under way: the first to arrive waits for the other five (here up to a
    // minute, so that its wait is certain), and the group runs when the sixth arrives.
    void many_under_way_gather_into_one_group() {
        SlowGathering g;
        QueueStore& q = g.q;
        std::vector<std::thread> threads;
        auto add = [&](int i) { threads.emplace_back([&, i] { add_under_way(q, i, 6); }); };
        add(0);
        wait_for_waiting(q, 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CPPUNIT_ASSERT_EQUAL(g.groups, q.intake_groups());  // still gathering
        for (int i = 1; i < 6; ++i) add(i);
        for (auto& t : threads) t.join();
        CPPUNIT_ASSERT_EQUAL(g.groups + 1, q.intake_groups());
        CPPUNIT_ASSERT(g.quick());
    }

    // Below six under way (one sender, two sessions) nobody waits for company.
    void few_under_way_never_wait() {
        SlowGathering g;
        for (int i = 0; i < 3; ++i) add_under_way(g.q, i, 5);
        CPPUNIT_ASSERT_EQUAL(g.groups + 3, g.q.intake_groups());
        CPPUNIT_ASSERT(g.quick());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreIntakeTest);
