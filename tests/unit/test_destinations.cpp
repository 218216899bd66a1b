// test_destinations: mxlanectl destinations' snapshot reader and its merge with the store's suspensions; pause names.
#include <cppunit/extensions/HelperMacros.h>

#include <unistd.h>

#include "qrunner/ctl/destinations.hpp"

using namespace mxlane;
using namespace mxlane::ctl;
using Suspension = store::QueueStore::Suspension;

namespace {

const std::int64_t kNow = 1764680000000;

std::string snapshot_text(long pid, std::int64_t written) {
    return "{\"pid\": " + std::to_string(pid) + ", \"written\": " + std::to_string(written) +
           ", \"destinations\": ["
           "{\"name\": \"Example.test\", \"kind\": \"destination\", \"provider\": \"mx:.google.com\","
           " \"mx\": \"mx1.example.test,mx2.example.test\", \"queued\": 12, \"inflight\": 3, \"connections\": 2,"
           " \"limit\": 10, \"paused_until\": 0, \"reason\": \"\", \"last_reply\": \"250 2.0.0 ok\"},"
           "{\"name\": \"mx:.google.com\", \"kind\": \"provider\", \"provider\": \"\", \"mx\": \".google.com\","
           " \"queued\": 40, \"inflight\": 6, \"connections\": 4, \"limit\": 10,"
           " \"paused_until\": " + std::to_string(kNow + 3600000) +
           ", \"reason\": \"421 4.7.28 rate\", \"last_reply\": \"421 4.7.28 rate\"},"
           "{\"name\": \"old.test\", \"paused_until\": " + std::to_string(kNow - 1) + ", \"reason\": \"gone\"}"
           "]}";
}

bool always(long) { return true; }
bool never(long) { return false; }

Suspension suspension(const std::string& name, std::int64_t until, const std::string& reason) {
    Suspension s;
    s.name = name;
    s.until = until;
    s.reason = reason;
    s.added = kNow - 1000;
    return s;
}

}  // namespace

class DestinationsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DestinationsTest);
    CPPUNIT_TEST(parse_live_snapshot);
    CPPUNIT_TEST(stale_or_dead_snapshot);
    CPPUNIT_TEST(malformed_snapshots);
    CPPUNIT_TEST(snapshot_sources);
    CPPUNIT_TEST(merge_overlays_and_appends);
    CPPUNIT_TEST(merge_without_snapshot);
    CPPUNIT_TEST(process_liveness);
    CPPUNIT_TEST(names);
    CPPUNIT_TEST_SUITE_END();

public:
    void parse_live_snapshot() {
        Snapshot s = parse_snapshot(snapshot_text(42, kNow - 2000), kNow, always);
        CPPUNIT_ASSERT(s.live);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), s.rows.size());
        const auto& d = s.rows[0];
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), d.name);  // names lower-cased
        CPPUNIT_ASSERT_EQUAL(std::string("destination"), d.kind);
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), d.provider);
        CPPUNIT_ASSERT_EQUAL(std::string("mx1.example.test,mx2.example.test"), d.mx);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(12), d.queued);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), d.inflight);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), d.connections);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), d.limit);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), d.paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string("250 2.0.0 ok"), d.last_reply);
        CPPUNIT_ASSERT_EQUAL(kNow + 3600000, s.rows[1].paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string("421 4.7.28 rate"), s.rows[1].reason);
        // Members left out are empty or 0.
        CPPUNIT_ASSERT_EQUAL(std::string(), s.rows[2].mx);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), s.rows[2].queued);
        CPPUNIT_ASSERT_EQUAL(std::string("destination"), s.rows[2].kind);
    }

    void stale_or_dead_snapshot() {
        CPPUNIT_ASSERT(parse_snapshot(snapshot_text(42, kNow - kSnapshotFreshMs), kNow, always).live);
        CPPUNIT_ASSERT(!parse_snapshot(snapshot_text(42, kNow - kSnapshotFreshMs - 1), kNow, always).live);
        CPPUNIT_ASSERT(!parse_snapshot(snapshot_text(42, kNow), kNow, never).live);
        long asked = 0;
        parse_snapshot(snapshot_text(4242, kNow), kNow, [&](long pid) { asked = pid; return true; });
        CPPUNIT_ASSERT_EQUAL(4242L, asked);
    }

    void malformed_snapshots() {
        for (const char* bad : {"", "{", "[]", "{\"pid\": 1, \"written\": 1}",
                                "{\"pid\": \"1\", \"written\": 1, \"destinations\": []}",
                                "{\"pid\": 1, \"written\": 1.5, \"destinations\": []}",
                                "{\"pid\": 1, \"written\": 1, \"destinations\": {}}",
                                "{\"pid\": 1, \"written\": 1, \"destinations\": [7]}",
                                "{\"pid\": 1, \"written\": 1, \"destinations\": [{\"queued\": 1}]}",
                                "{\"pid\": 1, \"written\": 1, \"destinations\": [{\"name\": \"a.test\", \"queued\": \"x\"}]}",
                                "{\"pid\": 1, \"written\": 1, \"destinations\": [{\"name\": 5}]}",
                                "{\"pid\": 1, \"written\": 18446744073709551615, \"destinations\": []}"}) {
            CPPUNIT_ASSERT_THROW_MESSAGE(bad, parse_snapshot(bad, kNow, always), SnapshotError);
        }
        // An empty list is a qrunner with nothing queued.
        Snapshot s = parse_snapshot("{\"pid\": 1, \"written\": " + std::to_string(kNow) + ", \"destinations\": []}",
                                    kNow, always);
        CPPUNIT_ASSERT(s.live);
        CPPUNIT_ASSERT(s.rows.empty());
    }

    // A sending address's shaping towards a provider (source_pools); a snapshot
    // without "sources" (a qrunner without pools) has none.
    void snapshot_sources() {
        const std::string head = "{\"pid\": 1, \"written\": " + std::to_string(kNow) + ", \"destinations\": []";
        Snapshot s = parse_snapshot(head + ", \"sources\": [{\"address\": \"127.0.0.2\", \"provider\": \"mx:.ms.test\","
                                           " \"connections\": 1, \"throttle_per_hour\": 60, \"throttled_until\": " +
                                        std::to_string(kNow + 5000) + ", \"reason\": \"451 4.7.650 limited\"}]}",
                                    kNow, always);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), s.sources.size());
        const auto& r = s.sources[0];
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.2"), r.address);
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.ms.test"), r.provider);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1), r.connections);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(60), r.throttle_per_hour);
        CPPUNIT_ASSERT_EQUAL(kNow + 5000, r.throttled_until);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), r.paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string("451 4.7.650 limited"), r.reason);
        CPPUNIT_ASSERT(parse_snapshot(head + "}", kNow, always).sources.empty());
        for (const std::string bad : {", \"sources\": {}}", ", \"sources\": [1]}", ", \"sources\": [{\"address\": \"127.0.0.2\"}]}",
                                      ", \"sources\": [{\"address\": \"127.0.0.2\", \"provider\": \"mx:a\", \"connections\": \"1\"}]}"})
            CPPUNIT_ASSERT_THROW_MESSAGE(bad, parse_snapshot(head + bad, kNow, always), SnapshotError);
    }

    void merge_overlays_and_appends() {
        Snapshot s = parse_snapshot(snapshot_text(42, kNow), kNow, always);
        auto rows = merge_destinations(
            s,
            {suspension("example.test", store::QueueStore::kForever, "paused by mxlanectl"),
             suspension("mx:.outlook.com", kNow + 60000, "421 4.7.650"), suspension("zz.test", kNow + 5, "z")},
            kNow);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), rows.size());
        // The snapshot's rows in its order, the store's pause over the snapshot's.
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), rows[0].name);
        CPPUNIT_ASSERT_EQUAL(store::QueueStore::kForever, rows[0].paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string("paused by mxlanectl"), rows[0].reason);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(12), rows[0].queued);
        CPPUNIT_ASSERT_EQUAL(std::string("250 2.0.0 ok"), rows[0].last_reply);
        // A pause only the qrunner knows is kept while it runs ...
        CPPUNIT_ASSERT_EQUAL(kNow + 3600000, rows[1].paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string("421 4.7.28 rate"), rows[1].reason);
        // ... and shown as none once it ran out.
        CPPUNIT_ASSERT_EQUAL(std::string("old.test"), rows[2].name);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), rows[2].paused_until);
        CPPUNIT_ASSERT_EQUAL(std::string(), rows[2].reason);
        // Then the suspensions the snapshot lacks, by name.
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.outlook.com"), rows[3].name);
        CPPUNIT_ASSERT_EQUAL(std::string("provider"), rows[3].kind);
        CPPUNIT_ASSERT_EQUAL(kNow + 60000, rows[3].paused_until);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), rows[3].queued);
        CPPUNIT_ASSERT_EQUAL(std::string(), rows[3].mx);
        CPPUNIT_ASSERT_EQUAL(std::string("zz.test"), rows[4].name);
        CPPUNIT_ASSERT_EQUAL(std::string("destination"), rows[4].kind);
    }

    void merge_without_snapshot() {
        // A stopped qrunner's snapshot shows nothing; the suspensions alone remain.
        Snapshot s = parse_snapshot(snapshot_text(42, kNow), kNow, never);
        auto rows = merge_destinations(s, {suspension("example.test", kNow + 1000, "r")}, kNow);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), rows.size());
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), rows[0].name);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), rows[0].queued);
        CPPUNIT_ASSERT(merge_destinations(Snapshot{}, {}, kNow).empty());
    }

    void process_liveness() {
        CPPUNIT_ASSERT(process_alive(static_cast<long>(::getpid())));
        CPPUNIT_ASSERT(process_alive(1));  // init: EPERM for a user, alive for root
        CPPUNIT_ASSERT(!process_alive(0));  // never the process group
        CPPUNIT_ASSERT(!process_alive(-1));
        CPPUNIT_ASSERT(!process_alive(1L << 40));
    }

    void names() {
        for (const char* good : {"example.test", "mx1.shop.test", "xn--bcher-kva.test", "mx:.google.com",
                                 "mx:mx1.example.test", "mx:.test", "mx:localhost", "my_host.example.test"})
            CPPUNIT_ASSERT_MESSAGE(good, valid_destination_name(good));
        for (const char* bad : {"", "example", "1h", "-", "--for", "bad name.test", "a..test", ".example.test",
                                "example.test.", "mx:", "mx:.", "mx:..google.com", "[127.0.0.1]", "a@b.test",
                                "Example.TEST", "mx:.google.com/x", "example.test:25"})
            CPPUNIT_ASSERT_MESSAGE(bad, !valid_destination_name(bad));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DestinationsTest);
