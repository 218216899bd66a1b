// test_dns_rules: the MX rules (RFC 5321 5.1, RFC 7505), destination keys, the answer cache
// and answer parsing, without network.
#include "tests/unit/dns_fixtures.hpp"

using namespace dns_fixtures;

// ---- rules, no network -----------------------------------------------------

class DnsRulesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DnsRulesTest);
    CPPUNIT_TEST(preference_order);
    CPPUNIT_TEST(equal_preferences_shuffled);
    CPPUNIT_TEST(destination_key);
    CPPUNIT_TEST(classification);
    CPPUNIT_TEST(literals_and_names);
    CPPUNIT_TEST(null_mx_rule);
    CPPUNIT_TEST(cache_expiry);
    CPPUNIT_TEST(answer_ttls);
    CPPUNIT_TEST(garbage_packets_do_not_crash);
    CPPUNIT_TEST(bad_server_list);
    CPPUNIT_TEST_SUITE_END();

public:
    void preference_order() {
        std::mt19937 random(1);
        std::vector<MxHost> hosts = {host("c", 30), host("a", 10), host("d", 5), host("b", 20)};
        order_by_preference(hosts, random);
        std::vector<int> prefs;
        for (const MxHost& h : hosts) prefs.push_back(h.preference);
        CPPUNIT_ASSERT((prefs == std::vector<int>{5, 10, 20, 30}));
    }

    void equal_preferences_shuffled() {
        std::mt19937 random(7);
        std::set<std::string> orders;
        for (int i = 0; i < 100; ++i) {
            std::vector<MxHost> hosts = {host("x", 20), host("a", 10), host("b", 10), host("c", 10)};
            order_by_preference(hosts, random);
            CPPUNIT_ASSERT_EQUAL(std::string("x"), hosts[3].name);
            orders.insert(hosts[0].name + hosts[1].name + hosts[2].name);
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), orders.size());  // all permutations of a, b, c
    }

    void destination_key() {
        MxResult one, two;
        one.hosts = {host("mx2.example.test", 20), host("mx1.example.test", 10)};
        two.hosts = {host("mx1.example.test", 5), host("mx2.example.test", 5)};
        CPPUNIT_ASSERT_EQUAL(std::string("mx1.example.test,mx2.example.test"), one.destination_key());
        CPPUNIT_ASSERT_EQUAL(one.destination_key(), two.destination_key());
        two.hosts.push_back(host("mx3.example.test", 5));
        CPPUNIT_ASSERT(one.destination_key() != two.destination_key());
        CPPUNIT_ASSERT_EQUAL(std::string(), MxResult{}.destination_key());
    }

    void classification() {
        CPPUNIT_ASSERT(classify(ARES_SUCCESS) == Reply::answer);
        CPPUNIT_ASSERT(classify(ARES_ENODATA) == Reply::no_data);
        CPPUNIT_ASSERT(classify(ARES_ENOTFOUND) == Reply::no_domain);
        CPPUNIT_ASSERT(classify(ARES_EBADNAME) == Reply::bad_name);
        for (int temporary : {ARES_ESERVFAIL, ARES_ETIMEOUT, ARES_EREFUSED, ARES_ECONNREFUSED, ARES_EBADRESP,
                              ARES_EFORMERR, ARES_ENOMEM, ARES_ECANCELLED, ARES_EDESTRUCTION, ARES_ENOTIMP})
            CPPUNIT_ASSERT(classify(temporary) == Reply::temporary);
        MxResult r = failure(Status::not_found, "5.1.2", "x.test", "MX", "Host not found");
        CPPUNIT_ASSERT_EQUAL(
            std::string("Host or domain name not found. Name service error for name=x.test type=MX: Host not found"),
            r.error);
        CPPUNIT_ASSERT_EQUAL(std::string("not_found"), std::string(to_string(r.status)));
    }

    void literals_and_names() {
        CPPUNIT_ASSERT_EQUAL(std::string("127.0.0.1"), address_literal("[127.0.0.1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[IPv6:::1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[ipv6:::1]")->to_string());
        CPPUNIT_ASSERT_EQUAL(std::string("::1"), address_literal("[::1]")->to_string());
        CPPUNIT_ASSERT(!address_literal("example.test"));
        CPPUNIT_ASSERT(!address_literal("[example.test]"));
        CPPUNIT_ASSERT(!address_literal("[IPv6:127.0.0.1]"));
        CPPUNIT_ASSERT(!address_literal("127.0.0.1"));
        CPPUNIT_ASSERT(!address_literal("[]"));
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), normalize_domain("Example.TEST."));
    }

    void null_mx_rule() {
        CPPUNIT_ASSERT(is_null_mx({host("", 0)}));
        CPPUNIT_ASSERT(is_null_mx({host(".", 0)}));
        CPPUNIT_ASSERT(!is_null_mx({host("", 0), host("mx.test", 10)}));  // RFC 7505 3: must stand alone
        CPPUNIT_ASSERT(!is_null_mx({host("mx.test", 0)}));
        CPPUNIT_ASSERT(!is_null_mx({}));
    }

    void cache_expiry() {
        MxCache cache(3);
        auto t0 = MxCache::Clock::now();
        MxResult r;
        r.status = Status::ok;
        r.hosts = {host("mx.test", 1)};
        cache.put("a", r, 10s, t0);
        cache.put("zero", r, 0s, t0);  // TTL 0: not kept
        CPPUNIT_ASSERT(cache.get("a", t0 + 9s));
        CPPUNIT_ASSERT(!cache.get("a", t0 + 10s));
        CPPUNIT_ASSERT(!cache.get("zero", t0));
        cache.put("b", r, 100s, t0);
        cache.put("c", r, 100s, t0);
        cache.put("d", r, 100s, t0 + 20s);  // full: the expired "a" makes room
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), cache.size());
        CPPUNIT_ASSERT(cache.get("d", t0 + 20s) && cache.get("b", t0 + 20s));
        cache.put("e", r, 100s, t0 + 20s);  // full of live entries: bounded anyway
        CPPUNIT_ASSERT(cache.size() <= 3);
        CPPUNIT_ASSERT(cache.get("e", t0 + 20s));
    }

    void answer_ttls() {
        // Question "t." MX; two MX answers (TTL 300 and 60) named by a pointer to the question.
        std::vector<unsigned char> q = query_packet("t", ns_t_mx, 1);
        std::vector<unsigned char> rr = {0xC0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 4, 0, 10, 0xC0, 12};
        std::vector<unsigned char> rr60 = rr;
        rr60[8] = 0;
        rr60[9] = 60;
        std::vector<unsigned char> tail = rr;
        tail.insert(tail.end(), rr60.begin(), rr60.end());
        Answer a{ARES_SUCCESS, response_to(q, tail, 2)};
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(60), a.min_ttl().value());
        CPPUNIT_ASSERT(!a.negative_ttl());
        // NXDOMAIN with an SOA (TTL 3600, MINIMUM 900) in the authority section.
        std::vector<unsigned char> soa = {0xC0, 12, 0, 6, 0, 1, 0, 0, 0x0E, 0x10, 0, 22, 1, 'n', 0, 1, 'h', 0,
                                          0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0x03, 0x84};
        Answer nx{ARES_ENOTFOUND, response_to(q, soa, 0)};
        nx.packet[3] = 0x83;
        nx.packet[9] = 1;  // NSCOUNT
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(900), nx.negative_ttl().value());
        CPPUNIT_ASSERT(!nx.min_ttl());
    }

    // c-ares's MX parser on a raw reply: its status, and how many records it read.
    static int ares_mx(const Answer& a, int* records = nullptr) {
        ares_mx_reply* reply = nullptr;
        int rc = ares_parse_mx_reply(a.packet.data(), static_cast<int>(a.packet.size()), &reply);
        int n = 0;
        for (ares_mx_reply* mx = reply; mx; mx = mx->next) ++n;
        if (reply) ares_free_data(reply);
        if (records) *records = n;
        return rc;
    }

    // Every truncation of a valid reply, valid replies with random contents
    // and random bytes after a valid header: each is read as records, as no
    // records or as malformed (c-ares's EBADRESP, or EBADNAME for a broken
    // name; resolve_mx makes either a retry), and c-ares and our TTL readers
    // agree on what is well-formed.
    void garbage_packets_do_not_crash() {
        std::vector<unsigned char> q = query_packet("t", ns_t_mx, 1);
        std::vector<unsigned char> rr = {0xC0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 4, 0, 10, 0xC0, 12};
        std::vector<unsigned char> full = response_to(q, rr, 1);
        for (std::size_t n = 0; n < full.size(); ++n) {
            Answer a{ARES_SUCCESS, std::vector<unsigned char>(full.begin(), full.begin() + n)};
            CPPUNIT_ASSERT_MESSAGE("truncated at " + std::to_string(n), !a.min_ttl() && !a.negative_ttl());
            int rc = ares_mx(a);
            CPPUNIT_ASSERT_MESSAGE(ares_strerror(rc), rc == ARES_EBADRESP || rc == ARES_EBADNAME);
        }
        Answer whole{ARES_SUCCESS, full};
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(300), whole.min_ttl().value());
        CPPUNIT_ASSERT_EQUAL(ARES_SUCCESS, ares_mx(whole));

        std::mt19937 random(42);
        int valid = 0, rejected = 0;
        for (int i = 0; i < 2000; ++i) {
            if (i % 2 == 0) {
                // Valid: one to three MX records with random TTLs and preferences.
                unsigned k = 1 + random() % 3;
                std::vector<unsigned char> tail;
                std::uint32_t smallest = UINT32_MAX;
                for (unsigned r = 0; r < k; ++r) {
                    std::uint32_t ttl = random() & 0x7FFFFFFF;  // RFC 2181 8: TTLs are 31 bits
                    smallest = std::min(smallest, ttl);
                    std::vector<unsigned char> one = rr;
                    for (int b = 0; b < 4; ++b) one[6 + b] = static_cast<unsigned char>(ttl >> (24 - 8 * b));
                    one[12] = static_cast<unsigned char>(random());
                    one[13] = static_cast<unsigned char>(random());
                    tail.insert(tail.end(), one.begin(), one.end());
                }
                Answer a{ARES_SUCCESS, response_to(q, tail, static_cast<unsigned char>(k))};
                int records = 0;
                CPPUNIT_ASSERT_EQUAL(ARES_SUCCESS, ares_mx(a, &records));
                CPPUNIT_ASSERT_EQUAL(static_cast<int>(k), records);
                CPPUNIT_ASSERT_EQUAL(smallest, a.min_ttl().value_or(0));
                CPPUNIT_ASSERT(!a.negative_ttl());
                ++valid;
                continue;
            }
            std::vector<unsigned char> tail(random() % 64);
            for (auto& b : tail) b = static_cast<unsigned char>(random());
            unsigned answers = random() % 4;
            Answer a{ARES_SUCCESS, response_to(q, tail, static_cast<unsigned char>(answers))};
            a.packet[9] = static_cast<unsigned char>(random() % 3);
            int rc = ares_mx(a);
            std::string what = "packet " + std::to_string(i) + ": " + ares_strerror(rc);
            CPPUNIT_ASSERT_MESSAGE(what, rc == ARES_SUCCESS || rc == ARES_ENODATA || rc == ARES_EBADRESP ||
                                             rc == ARES_EBADNAME);
            if (answers == 0) {
                CPPUNIT_ASSERT_EQUAL_MESSAGE(what, ARES_ENODATA, rc);
                CPPUNIT_ASSERT(!a.min_ttl());
            }
            // What c-ares reads as records, the TTL reader reads too.
            if (rc == ARES_SUCCESS) CPPUNIT_ASSERT_MESSAGE(what, a.min_ttl().has_value());
            if (rc == ARES_EBADRESP || rc == ARES_EBADNAME) ++rejected;
            a.negative_ttl();
        }
        CPPUNIT_ASSERT_EQUAL(1000, valid);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(rejected) + " rejected", rejected > 400);  // the garbage was garbage
    }

    void bad_server_list() {
        asio::io_context io;
        CPPUNIT_ASSERT_THROW(Resolver(io, {"not an address"}, 100ms), std::invalid_argument);
        Resolver ok(io, {"127.0.0.1:5353, 127.0.0.2", "[::1]:5353"}, 100ms);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DnsRulesTest);
