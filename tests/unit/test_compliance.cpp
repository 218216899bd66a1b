// test_compliance: SPF evaluation (libspf2 through mxlane's resolver), DMARC records and forward-confirmed PTRs, against a private dnsmasq.
#include "qrunner/compliance/dmarc.hpp"
#include "qrunner/compliance/sender_check.hpp"
#include "qrunner/compliance/spf.hpp"
#include "tests/unit/dns_fixtures.hpp"

using namespace dns_fixtures;
using namespace mxlane::compliance;

namespace {

// Real records from dnsmasq: no mock DNS anywhere in this file.
const char* kRecords = R"(txt-record=ip4.spf.test,"v=spf1 ip4:127.0.0.2 -all"
txt-record=inc.spf.test,"v=spf1 include:_spf.inc.spf.test -all"
txt-record=_spf.inc.spf.test,"v=spf1 ip4:127.0.0.0/30 -all"
txt-record=a.spf.test,"v=spf1 a:out.a.spf.test -all"
host-record=out.a.spf.test,127.0.0.6
txt-record=mx.spf.test,"v=spf1 mx -all"
mx-host=mx.spf.test,mail.mx.spf.test,10
host-record=mail.mx.spf.test,127.0.0.7
txt-record=six.spf.test,"v=spf1 ip6:::1 -all"
txt-record=redirect.spf.test,"v=spf1 redirect=ip4.spf.test"
txt-record=soft.spf.test,"v=spf1 ip4:127.0.0.2 ~all"
txt-record=broken.spf.test,"v=spf1 ip4:127.0.0.2 bogus:x -all"
txt-record=twice.spf.test,"v=spf1 -all"
txt-record=twice.spf.test,"v=spf1 +all"
txt-record=split.spf.test,"v=spf1 ip4:127.0.0.2"," -all"
host-record=nospf.test,127.0.0.9
txt-record=_dmarc.shop.test,"v=DMARC1; p=quarantine; rua=mailto:dmarc@shop.test"
txt-record=_dmarc.bad.test,"v=DMARC1; p=maybe"
host-record=mta1.shop.test,127.0.0.2
host-record=mta2.shop.test,127.0.0.3
ptr-record=4.0.0.127.in-addr.arpa,ghost.shop.test
local=/0.0.127.in-addr.arpa/
)";

// Eleven includes in a chain: one more than RFC 7208 4.6.4 allows.
std::string lookup_chain() {
    std::string out;
    for (int i = 0; i < 11; ++i)
        out += "txt-record=l" + std::to_string(i) + ".spf.test,\"v=spf1 include:l" + std::to_string(i + 1) +
               ".spf.test -all\"\n";
    out += "txt-record=l11.spf.test,\"v=spf1 ip4:127.0.0.2 -all\"\n";
    return out;
}

}  // namespace

class ComplianceTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ComplianceTest);
    CPPUNIT_TEST(spf_ip4_and_all);
    CPPUNIT_TEST(spf_include_a_mx_ip6_redirect);
    CPPUNIT_TEST(spf_results_other_than_pass);
    CPPUNIT_TEST(spf_lookup_limit);
    CPPUNIT_TEST(dmarc_parse);
    CPPUNIT_TEST(dmarc_lookup);
    CPPUNIT_TEST(ptr_forward_confirmed);
    CPPUNIT_TEST(reverse_names);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override {
        dns_ = std::make_unique<Dnsmasq>(kRecords + lookup_chain());
        client_ = std::make_unique<ResolverClient>(std::vector<std::string>{dns_->server()}, 1000ms);
    }
    void tearDown() override {
        client_.reset();
        dns_.reset();
    }

    std::string spf(const std::string& domain, const std::string& address) {
        return spf_evaluate(*client_, domain, address).result;
    }

    void spf_ip4_and_all() {
        // Loopback addresses are evaluated like any other (libspf2 alone would pass them unread).
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("ip4.spf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("ip4.spf.test", "127.0.0.4"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("ip4.spf.test", "::1"));
        // A record in two strings is one record (RFC 7208 3.3).
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("split.spf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("split.spf.test", "127.0.0.3"));
    }

    void spf_include_a_mx_ip6_redirect() {
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("inc.spf.test", "127.0.0.3"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("inc.spf.test", "127.0.0.5"));
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("a.spf.test", "127.0.0.6"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("a.spf.test", "127.0.0.7"));
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("mx.spf.test", "127.0.0.7"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("mx.spf.test", "127.0.0.6"));
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("six.spf.test", "::1"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("six.spf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("redirect.spf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), spf("redirect.spf.test", "127.0.0.4"));
    }

    void spf_results_other_than_pass() {
        CPPUNIT_ASSERT_EQUAL(std::string("softfail"), spf("soft.spf.test", "127.0.0.3"));
        CPPUNIT_ASSERT_EQUAL(std::string("none"), spf("nospf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("none"), spf("nosuchdomain.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("permerror"), spf("broken.spf.test", "127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("permerror"), spf("twice.spf.test", "127.0.0.2"));
        // timeout.test's server never answers.
        CPPUNIT_ASSERT_EQUAL(std::string("temperror"), spf("timeout.test", "127.0.0.2"));
    }

    void spf_lookup_limit() {
        SpfVerdict v = spf_evaluate(*client_, "l0.spf.test", "127.0.0.2");
        CPPUNIT_ASSERT_EQUAL_MESSAGE(v.detail, std::string("permerror"), v.result);
        // Ten includes are allowed.
        CPPUNIT_ASSERT_EQUAL(std::string("pass"), spf("l1.spf.test", "127.0.0.2"));
    }

    void dmarc_parse() {
        auto ok = parse_dmarc("v=DMARC1; p=reject; sp=none; pct=50; adkim=s; rua=mailto:a@shop.test,mailto:b@shop.test;");
        CPPUNIT_ASSERT(ok.record);
        CPPUNIT_ASSERT_EQUAL(std::string("reject"), ok.record->policy);
        CPPUNIT_ASSERT_EQUAL(std::string("none"), ok.record->subdomain_policy);
        CPPUNIT_ASSERT_EQUAL(50, ok.record->percent);
        CPPUNIT_ASSERT(ok.record->strict_dkim && !ok.record->strict_spf);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), ok.record->aggregate_reports.size());
        auto plain = parse_dmarc("v=DMARC1;P=None;future=1");  // tags are case-insensitive, unknown ones ignored
        CPPUNIT_ASSERT(plain.record);
        CPPUNIT_ASSERT_EQUAL(std::string("none"), plain.record->subdomain_policy);
        for (const char* bad : {"p=none; v=DMARC1", "v=DMARC1", "v=DMARC1; p=maybe", "v=DMARC1; p=none; pct=101",
                                "v=DMARC1; p=none; adkim=x", "v=DMARC2; p=none", "v=DMARC1; p", ""}) {
            auto r = parse_dmarc(bad);
            CPPUNIT_ASSERT_MESSAGE(bad, !r.record);
            CPPUNIT_ASSERT_MESSAGE(bad, !r.error.empty());
        }
    }

    void dmarc_lookup() {
        auto own = find_dmarc(*client_, "shop.test");
        CPPUNIT_ASSERT(own.parse.record);
        CPPUNIT_ASSERT_EQUAL(std::string("quarantine"), own.parse.record->policy);
        // A subdomain without its own record has its organizational domain's.
        auto sub = find_dmarc(*client_, "news.shop.test");
        CPPUNIT_ASSERT(sub.parse.record);
        CPPUNIT_ASSERT_EQUAL(std::string("_dmarc.shop.test"), sub.name);
        auto none = find_dmarc(*client_, "ip4.spf.test");
        CPPUNIT_ASSERT(!none.parse.record);
        CPPUNIT_ASSERT_EQUAL(std::string("no DMARC record"), none.parse.error);
        auto bad = find_dmarc(*client_, "bad.test");
        CPPUNIT_ASSERT(!bad.parse.record);
        CPPUNIT_ASSERT(bad.parse.error.find("p=maybe") != std::string::npos);
    }

    void ptr_forward_confirmed() {
        SendingAddresses from;
        from.senders = {{"127.0.0.2", "mta1.shop.test"},  // good
                        {"127.0.0.3", "mta1.shop.test"},  // PTR mta2.shop.test: not its HELO name
                        {"127.0.0.4", "ghost.shop.test"}, // PTR whose name has no address
                        {"127.0.0.5", "mta5.shop.test"}}; // no PTR
        auto rows = check_addresses(*client_, from);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), rows.size());
        CPPUNIT_ASSERT_EQUAL_MESSAGE(rows[0].detail, std::string("pass"), rows[0].result);
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), rows[1].result);
        CPPUNIT_ASSERT(rows[1].detail.find("not the HELO name") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), rows[2].result);
        CPPUNIT_ASSERT(rows[2].detail.find("does not resolve back") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("fail"), rows[3].result);
        CPPUNIT_ASSERT(rows[3].detail.find("no PTR") != std::string::npos);
    }

    void reverse_names() {
        CPPUNIT_ASSERT_EQUAL(std::string("2.0.0.127.in-addr.arpa"), reverse_name("127.0.0.2"));
        CPPUNIT_ASSERT_EQUAL(std::string("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"),
                             reverse_name("::1"));
        CPPUNIT_ASSERT_EQUAL(std::string(), reverse_name("mta1.shop.test"));
    }

private:
    std::unique_ptr<Dnsmasq> dns_;
    std::unique_ptr<ResolverClient> client_;
};

CPPUNIT_TEST_SUITE_REGISTRATION(ComplianceTest);
