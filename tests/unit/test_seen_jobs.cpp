// test_seen_jobs: the qrunner's once-per-job sets stay bounded: ended jobs are forgotten, live and held ones kept.
#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <stdexcept>

#include "qrunner/seen_jobs.hpp"

using mxlane::qrunner::SeenJobs;

// `ended` stands in for the store read (is the job gone or done?): the class
// decides only when to ask and what to forget.
class SeenJobsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SeenJobsTest);
    CPPUNIT_TEST(first_sight_once);
    CPPUNIT_TEST(ended_jobs_forgotten_at_the_bound);
    CPPUNIT_TEST(stays_bounded_over_many_jobs);
    CPPUNIT_TEST(a_failing_lookup_keeps_everything);
    CPPUNIT_TEST_SUITE_END();

    static constexpr std::size_t bound = SeenJobs::min_prune_at;

public:
    void first_sight_once() {
        SeenJobs seen;
        auto never = [](std::uint64_t) { return false; };
        CPPUNIT_ASSERT(seen.first_sight(7, never));
        CPPUNIT_ASSERT(!seen.first_sight(7, never));
        seen.forget(7);
        CPPUNIT_ASSERT(seen.first_sight(7, never));
    }

    // Below the bound nothing is asked; at it, the ended ones go, the live ones
    // (a held or released job among them) stay and are still known.
    void ended_jobs_forgotten_at_the_bound() {
        SeenJobs seen;
        std::size_t asked = 0;
        auto odd_ended = [&](std::uint64_t id) {
            ++asked;
            return id % 2 == 1;
        };
        for (std::uint64_t id = 1; id < bound; ++id) CPPUNIT_ASSERT(seen.first_sight(id, odd_ended));
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), asked);
        CPPUNIT_ASSERT(seen.first_sight(bound, odd_ended));  // the sweep
        CPPUNIT_ASSERT_EQUAL(bound - 1, asked);              // every id but the new one
        CPPUNIT_ASSERT_EQUAL(bound / 2, seen.size());
        CPPUNIT_ASSERT(!seen.first_sight(2, odd_ended));  // live: still seen, not checked again
        CPPUNIT_ASSERT(seen.first_sight(3, odd_ended));   // ended: forgotten
    }

    // A long run of jobs that each end: the set never holds much more than the bound.
    void stays_bounded_over_many_jobs() {
        SeenJobs seen;
        std::uint64_t live_from = 0;  // jobs below this one have ended
        std::size_t asked = 0, largest = 0;
        auto ended = [&](std::uint64_t id) {
            ++asked;
            return id < live_from;
        };
        const std::uint64_t jobs = 100000;
        for (std::uint64_t id = 0; id < jobs; ++id) {
            live_from = id >= 10 ? id - 10 : 0;  // ten jobs running at a time
            seen.first_sight(id, ended);
            largest = std::max(largest, seen.size());
        }
        CPPUNIT_ASSERT(largest <= bound);
        CPPUNIT_ASSERT(asked <= 2 * jobs);
    }

    void a_failing_lookup_keeps_everything() {
        SeenJobs seen;
        auto never = [](std::uint64_t) { return false; };
        for (std::uint64_t id = 1; id < bound; ++id) seen.first_sight(id, never);
        auto broken = [](std::uint64_t) -> bool { throw std::runtime_error("store unavailable"); };
        CPPUNIT_ASSERT_THROW(seen.first_sight(bound, broken), std::runtime_error);
        CPPUNIT_ASSERT_EQUAL(bound, seen.size());
        CPPUNIT_ASSERT(!seen.first_sight(bound, never));  // the new id was taken before the sweep
        CPPUNIT_ASSERT(seen.first_sight(bound + 1, never));  // no sweep at once after a failed one
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SeenJobsTest);
