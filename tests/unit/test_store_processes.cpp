// test_store_processes: several processes on one store at once, and a writer killed with SIGKILL.
#include <cppunit/extensions/HelperMacros.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <vector>

#include "libshared/store/queue_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane::store;
using mxlane::test::TempDir;

namespace {

// Stores message number m of job `name`, with per_message recipients.
IntakeResult add(QueueStore& q, const std::string& name, int m, int per_message) {
    Intake in;
    in.job_name = name;
    in.sender = name + "@sender.test";
    for (int r = 0; r < per_message; ++r)
        in.recipients.push_back({name + "-" + std::to_string(m) + "-" + std::to_string(r) + "@x.test", {}});
    std::istringstream text("Subject: " + name + "\n\nbody\n");
    return q.add_message(in, text, now_ms());
}

// Adds `messages` messages of `per_message` recipients under job name `name`;
// writes each committed message id to fd (when >= 0). Runs in a child process.
[[noreturn]] void writer(const std::string& dir, const std::string& name, int messages, int per_message, int fd) {
    int rc = 0;
    try {
        QueueStore q(dir);
        for (int m = 0; m < messages; ++m) {
            auto res = add(q, name, m, per_message);
            if (fd >= 0) {
                std::uint64_t ids[2] = {res.job_id, res.message_id};
                if (::write(fd, ids, sizeof ids) != sizeof ids) rc = 3;
            }
        }
    } catch (const std::exception& e) {
        fprintf(stderr, "writer %s: %s\n", name.c_str(), e.what());
        rc = 2;
    }
    _exit(rc);
}

std::size_t count_recipients(QueueStore& q, std::uint64_t job) {
    std::size_t n = 0;
    q.each_recipient(job, std::nullopt, [&](const Recipient&) {
        ++n;
        return true;
    });
    return n;
}

}  // namespace

class StoreProcessTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreProcessTest);
    CPPUNIT_TEST(two_writers_at_once);
    CPPUNIT_TEST(writer_killed_mid_run);
    CPPUNIT_TEST(new_store_opened_by_several_at_once);
    CPPUNIT_TEST_SUITE_END();

public:
    void two_writers_at_once() {
        TempDir dir;
        { QueueStore init(dir.path()); }
        pid_t a = fork();
        if (a == 0) writer(dir.path(), "alpha", 500, 20, -1);
        pid_t b = fork();
        if (b == 0) writer(dir.path(), "beta", 500, 20, -1);
        int sa = 0, sb = 0;
        waitpid(a, &sa, 0);
        waitpid(b, &sb, 0);
        CPPUNIT_ASSERT(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
        CPPUNIT_ASSERT(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
        QueueStore q(dir.path());
        auto jobs = q.jobs();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), jobs.size());
        for (const auto& j : jobs) {
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(10000), j.total());
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(500), j.messages);
            CPPUNIT_ASSERT_EQUAL(std::size_t(10000), count_recipients(q, j.id));
        }
        // Every recipient is in the due index exactly once.
        std::size_t due = 0;
        for (;;) {
            auto c = q.claim_due(now_ms(), 5000, now_ms(), 0);
            if (c.due.empty()) break;
            due += c.due.size();
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(20000), due);
    }

    // Processes that open a store nobody has created yet race to create its
    // files and id sequences; the losers retry and open what the winner made.
    // Each round releases three writers and this process at one gate, and
    // every one of them must store its message under an id of its own (this
    // process's own retries must also leave nothing behind: LeakSanitizer).
    void new_store_opened_by_several_at_once() {
        for (int round = 0; round < 6; ++round) {
            TempDir dir;
            int gate[2];
            CPPUNIT_ASSERT(pipe(gate) == 0);
            std::vector<pid_t> children;
            for (int w = 0; w < 3; ++w) {
                pid_t child = fork();
                if (child == 0) {
                    close(gate[1]);
                    char c;
                    (void)!::read(gate[0], &c, 1);  // returns at the gate's close
                    writer(dir.path(), "w" + std::to_string(w), 1, 1, -1);
                }
                children.push_back(child);
            }
            close(gate[0]);
            close(gate[1]);
            std::uint64_t own_message = 0;
            {
                QueueStore q(dir.path());
                own_message = add(q, "parent", 0, 1).message_id;
            }
            for (pid_t child : children) {
                int status = 0;
                waitpid(child, &status, 0);
                CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            }
            QueueStore q(dir.path());
            std::set<std::uint64_t> ids;
            for (const auto& j : q.jobs()) {
                CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), j.messages);
                for (const auto& m : q.messages(j.id)) ids.insert(m.id);
            }
            CPPUNIT_ASSERT_EQUAL(std::size_t(4), q.jobs().size());
            CPPUNIT_ASSERT_EQUAL(std::size_t(4), ids.size());
            CPPUNIT_ASSERT(ids.count(own_message));
        }
    }

    void writer_killed_mid_run() {
        TempDir dir;
        { QueueStore init(dir.path()); }
        for (int round = 0; round < 3; ++round) {
            int fds[2];
            CPPUNIT_ASSERT(pipe(fds) == 0);
            pid_t child = fork();
            if (child == 0) {
                close(fds[0]);
                writer(dir.path(), "kill" + std::to_string(round), 100000, 5, fds[1]);
            }
            close(fds[1]);
            // Let it commit a few hundred messages, then kill it in the middle of a write.
            std::vector<std::pair<std::uint64_t, std::uint64_t>> committed;
            std::uint64_t ids[2];
            while (committed.size() < 200 + 50 * static_cast<std::size_t>(round) &&
                   ::read(fds[0], ids, sizeof ids) == sizeof ids)
                committed.emplace_back(ids[0], ids[1]);
            kill(child, SIGKILL);
            while (::read(fds[0], ids, sizeof ids) == sizeof ids) committed.emplace_back(ids[0], ids[1]);
            close(fds[0]);
            int status = 0;
            waitpid(child, &status, 0);
            CPPUNIT_ASSERT(WIFSIGNALED(status));
            // Reopen (recovery runs): every message acknowledged as committed is there, whole.
            QueueStore q(dir.path());
            std::set<std::uint64_t> messages;
            for (const auto& m : q.messages(committed.at(0).first)) messages.insert(m.id);
            for (const auto& [job, msg] : committed) CPPUNIT_ASSERT(messages.count(msg) == 1);
            auto job = q.job(committed[0].first);
            CPPUNIT_ASSERT(job);
            // No half-written message: recipients are exactly 5 per stored message.
            CPPUNIT_ASSERT_EQUAL(std::uint64_t(5 * messages.size()), job->total());
            CPPUNIT_ASSERT_EQUAL(std::size_t(5 * messages.size()), count_recipients(q, job->id));
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreProcessTest);
