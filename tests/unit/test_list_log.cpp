// test_list_log: shared lists' change counting: the store's numbered suppression log, and Redis's version and log against a double.
#include <cppunit/extensions/HelperMacros.h>

#include <deque>
#include <map>

#include "libshared/store/queue_store.hpp"
#include "qrunner/list_log.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane::qrunner;
using mxlane::store::QueueStore;
using mxlane::test::TempDir;

namespace {

// A double of what kWriteScript, kReadSinceScript and kReadAllScript do in
// Redis (the scripts themselves run against a real redis-server in
// tests/integration/qrunner_shared.sh), with a log short enough to overflow
// and a restart that loses everything, which a real server cannot be made to
// do at a chosen moment inside a unit test.
struct RedisLists {
    std::map<std::string, std::string> hash;
    std::uint64_t version = 0;
    std::deque<std::string> log;
    std::uint64_t keep = 5;
    std::size_t entries_sent = 0;  // log entries handed to hosts, all reads together

    void write(bool add, const std::string& key, const std::string& value = "") {
        if (add) hash[key] = value;
        else hash.erase(key);
        log.push_back(encode_entry(ListEntry{++version, add, key, value}));
        while (log.size() > keep) log.pop_front();
    }
    std::pair<std::uint64_t, std::vector<std::string>> read_since(std::uint64_t seen) {
        if (version <= seen || version - seen > keep) return {version, {}};
        std::vector<std::string> tail(log.end() - static_cast<std::ptrdiff_t>(version - seen), log.end());
        entries_sent += tail.size();
        return {version, tail};
    }
    void restart() { *this = RedisLists{{}, 0, {}, keep, entries_sent}; }
};

// One host's copy of the list, synced as SharedList does.
struct HostList {
    std::map<std::string, std::string> list;
    std::uint64_t seen = 0;
    int full_compares = 0;
    bool connected = false;  // as SharedList::reconnected(): a new connection compares the lists once

    void sync(RedisLists& r) {
        const auto [version, tail] = r.read_since(seen);
        const LogPlan plan = plan_read(seen, version, r.keep);
        if (plan.step == LogPlan::Step::nothing && connected) return;
        std::optional<std::vector<ListEntry>> entries;
        if (plan.step == LogPlan::Step::read && connected) entries = entries_after(tail, seen, version);
        connected = true;
        if (!entries) {
            ++full_compares;
            for (const auto& [k, v] : r.hash) list.try_emplace(k, v);
            for (const auto& [k, v] : list)
                if (!r.hash.contains(k)) r.write(true, k, v);
            seen = r.version;
            return;
        }
        for (const auto& e : *entries) {
            if (e.added) list[e.key] = e.value;
            else list.erase(e.key);
        }
        seen = entries->back().version;
    }
};

}  // namespace

class ListLogTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ListLogTest);
    CPPUNIT_TEST(entries);
    CPPUNIT_TEST(no_change_reads_nothing);
    CPPUNIT_TEST(a_change_reads_that_change);
    CPPUNIT_TEST(too_far_behind_compares_once);
    CPPUNIT_TEST(redis_restarted_compares_and_refills);
    CPPUNIT_TEST(a_missing_entry_means_compare);
    CPPUNIT_TEST(store_log_numbers_changes);
    CPPUNIT_TEST_SUITE_END();

public:
    void entries() {
        const ListEntry e{42, true, "ann@a.test", "unsubscribed by a click"};
        CPPUNIT_ASSERT_EQUAL(std::string("42 +ann@a.test unsubscribed by a click"), encode_entry(e));
        auto back = decode_entry(encode_entry(e));
        CPPUNIT_ASSERT(back && back->version == 42 && back->added && back->key == e.key && back->value == e.value);
        back = decode_entry("43 -ann@a.test");
        CPPUNIT_ASSERT(back && !back->added && back->key == "ann@a.test" && back->value.empty());
        for (const char* bad : {"", "43", "43 ", "43 *x", "x +a b", "0 +a", "43 +"})
            CPPUNIT_ASSERT_MESSAGE(bad, !decode_entry(bad));
    }

    void no_change_reads_nothing() {
        RedisLists r;
        HostList a;
        r.write(true, "x@a.test", "bounce");
        a.sync(r);
        const std::size_t sent = r.entries_sent;
        for (int i = 0; i < 100; ++i) a.sync(r);
        CPPUNIT_ASSERT_EQUAL(sent, r.entries_sent);
        CPPUNIT_ASSERT_EQUAL(1, a.full_compares);  // the first, at connection
        CPPUNIT_ASSERT_EQUAL(LogPlan::Step::nothing, plan_read(7, 7).step);
    }

    void a_change_reads_that_change() {
        RedisLists r;
        HostList a, b;
        for (int i = 0; i < 4; ++i) r.write(true, "u" + std::to_string(i) + "@a.test", "manual");
        a.sync(r);
        b.sync(r);
        const std::size_t sent = r.entries_sent;
        r.write(false, "u1@a.test");
        a.sync(r);
        CPPUNIT_ASSERT_EQUAL(sent + 1, r.entries_sent);
        CPPUNIT_ASSERT(!a.list.contains("u1@a.test"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), a.list.size());
        r.write(true, "v@a.test", "complaint");
        b.sync(r);  // b reads both changes, in order
        CPPUNIT_ASSERT_EQUAL(sent + 3, r.entries_sent);
        CPPUNIT_ASSERT(b.list == r.hash);
        CPPUNIT_ASSERT_EQUAL(2, a.full_compares + b.full_compares);  // each at connection only
    }

    void too_far_behind_compares_once() {
        RedisLists r;
        HostList a;
        a.sync(r);
        for (int i = 0; i < 8; ++i) r.write(true, "w" + std::to_string(i) + "@a.test", "bounce");  // the log keeps 5
        CPPUNIT_ASSERT_EQUAL(LogPlan::Step::full, plan_read(a.seen, r.version, r.keep).step);
        a.sync(r);
        CPPUNIT_ASSERT_EQUAL(2, a.full_compares);
        CPPUNIT_ASSERT(a.list == r.hash);
        a.sync(r);
        CPPUNIT_ASSERT_EQUAL(2, a.full_compares);
    }

    void redis_restarted_compares_and_refills() {
        RedisLists r;
        HostList a, b;
        r.write(true, "x@a.test", "bounce");
        r.write(true, "y@a.test", "bounce");
        a.sync(r);
        b.sync(r);
        r.restart();
        r.write(true, "z@a.test", "manual");  // version 1, below what the hosts saw
        CPPUNIT_ASSERT_EQUAL(LogPlan::Step::full, plan_read(a.seen, r.version, r.keep).step);
        a.connected = b.connected = false;  // both lost their connections to it
        a.sync(r);  // gives Redis back what it lost
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), r.hash.size());
        b.sync(r);
        CPPUNIT_ASSERT(b.list == r.hash);
        CPPUNIT_ASSERT(a.list == r.hash);
    }

    void a_missing_entry_means_compare() {
        const std::vector<std::string> tail = {"5 +a@a.test r", "7 +c@a.test r"};
        CPPUNIT_ASSERT(!entries_after(tail, 4, 7));
        CPPUNIT_ASSERT(!entries_after({"5 +a@a.test r"}, 4, 6));  // the last one is not there
        CPPUNIT_ASSERT(!entries_after({"garbage"}, 4, 5));
        auto ok = entries_after({"4 +x@a.test r", "5 +a@a.test r"}, 4, 5);  // 4 was known already
        CPPUNIT_ASSERT(ok && ok->size() == 1 && ok->front().key == "a@a.test");
    }

    // The store numbers each addition and removal; another host's changes leave no entry.
    void store_log_numbers_changes() {
        TempDir dir;
        QueueStore q(dir.path());
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), q.suppression_log_end());
        CPPUNIT_ASSERT(q.suppress("Ann@A.test", "manual", 1));
        CPPUNIT_ASSERT(!q.suppress("ann@a.test", "again", 2));  // there already: no change
        CPPUNIT_ASSERT(q.suppress("bob@a.test", "bounce", 3));
        CPPUNIT_ASSERT(q.unsuppress("ann@a.test"));
        CPPUNIT_ASSERT(q.suppress_unlogged("cy@a.test", "complaint", 4));
        CPPUNIT_ASSERT(q.unsuppress_unlogged("bob@a.test"));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), q.suppression_log_end());
        auto all = q.suppression_changes(0, 100);
        CPPUNIT_ASSERT(all && all->size() == 3);
        CPPUNIT_ASSERT((*all)[0].added && (*all)[0].address == "ann@a.test" && (*all)[0].reason == "manual");
        CPPUNIT_ASSERT((*all)[1].added && (*all)[1].address == "bob@a.test" && (*all)[1].number == 2);
        CPPUNIT_ASSERT(!(*all)[2].added && (*all)[2].address == "ann@a.test");
        auto some = q.suppression_changes(1, 1);
        CPPUNIT_ASSERT(some && some->size() == 1 && some->front().number == 2);
        auto none = q.suppression_changes(3, 100);
        CPPUNIT_ASSERT(none && none->empty());
        CPPUNIT_ASSERT(!q.suppression_changes(9, 100));  // the log is behind: compare
        CPPUNIT_ASSERT(q.is_suppressed("cy@a.test"));
        CPPUNIT_ASSERT(!q.is_suppressed("bob@a.test"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ListLogTest);
