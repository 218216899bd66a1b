// test_destination_policy: providers in the destination policy: mx: lines, provider_for, the providers file and its merge.
#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <sstream>

#include "libshared/config_file.hpp"
#include "libshared/destination_policy.hpp"
#include "tests/unit/temp_dir.hpp"

using mxlane::Config;
using mxlane::ConfigError;
using mxlane::DestinationPolicy;

namespace {

std::string error_of(const std::string& text, bool providers_file = false) {
    try {
        if (providers_file) DestinationPolicy::parse_providers(text, "prov.cf");
        else DestinationPolicy::parse(text, "dest.cf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

std::string shipped(const std::string& name) {
    std::ifstream in(std::string(MXLANE_SRCDIR) + "/conf/" + name);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string pattern_of(const DestinationPolicy::Entry* e) { return e ? e->pattern : "(none)"; }

}  // namespace

class DestinationPolicyTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DestinationPolicyTest);
    CPPUNIT_TEST(mx_patterns_parse);
    CPPUNIT_TEST(provider_for_matches_hosts);
    CPPUNIT_TEST(domains_and_providers_stay_apart);
    CPPUNIT_TEST(entry_settings_fall_back_to_the_config);
    CPPUNIT_TEST(bad_provider_lines);
    CPPUNIT_TEST(providers_file_merges_line_by_line);
    CPPUNIT_TEST(shipped_providers_parse);
    CPPUNIT_TEST(example_lines_parse);
    CPPUNIT_TEST_SUITE_END();

public:
    void mx_patterns_parse() {
        auto p = DestinationPolicy::parse("MX:.Google.COM.  destination_concurrency=10 max_messages_per_hour=20000\n"
                                          "mx:mx1.example.test destination_backoff=10m\n"
                                          "gmail.com destination_concurrency=3\n",
                                          "dest.cf");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.entries().size());
        // Lower-cased, the trailing dot gone.
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), p.entries()[0].pattern);
        CPPUNIT_ASSERT(p.entries()[0].provider());
        CPPUNIT_ASSERT_EQUAL(std::string("mx:mx1.example.test"), p.entries()[1].pattern);
        CPPUNIT_ASSERT(p.entries()[1].provider());
        CPPUNIT_ASSERT(!p.entries()[2].provider());
        CPPUNIT_ASSERT_EQUAL(2, p.entries()[1].line);
    }

    void provider_for_matches_hosts() {
        auto p = DestinationPolicy::parse("mx:mx1.mail.example.test destination_concurrency=1\n"
                                          "mx:.example.test destination_concurrency=2\n"
                                          "mx:.google.com destination_concurrency=10\n"
                                          "mx:.mail.example.test destination_concurrency=3\n",
                                          "dest.cf");
        // Suffix: any host below it, not the suffix itself nor a look-alike.
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), pattern_of(p.provider_for("aspmx.l.google.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("google.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("notgoogle.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("google.com.evil.test")));
        // Case and the trailing dot of a host name from DNS do not matter.
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), pattern_of(p.provider_for("ALT1.ASPMX.L.Google.Com.")));
        // Exact host; the first matching line wins, in file order.
        CPPUNIT_ASSERT_EQUAL(std::string("mx:mx1.mail.example.test"), pattern_of(p.provider_for("MX1.mail.example.test.")));
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.example.test"), pattern_of(p.provider_for("mx2.mail.example.test")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("example.test")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("mx.other.test")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for(".")));
        CPPUNIT_ASSERT(DestinationPolicy().provider_for("aspmx.l.google.com") == nullptr);
    }

    void domains_and_providers_stay_apart() {
        auto p = DestinationPolicy::parse("mx:.google.com destination_concurrency=10\n"
                                          "mx:gmail.com destination_concurrency=9\n"
                                          ".google.com destination_concurrency=4\n"
                                          "*  destination_concurrency=20\n",
                                          "dest.cf");
        // match() never gives an mx: line, even for a domain spelled like its host.
        CPPUNIT_ASSERT_EQUAL(std::string("*"), pattern_of(p.match("gmail.com")));
        CPPUNIT_ASSERT_EQUAL(std::string(".google.com"), pattern_of(p.match("mail.google.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("*"), pattern_of(p.match("mx:gmail.com")));
        // provider_for() never gives a domain line, not even "*".
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), pattern_of(p.provider_for("mail.google.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("(none)"), pattern_of(p.provider_for("mx.other.test")));
        auto only_domains = DestinationPolicy::parse("gmail.com destination_concurrency=3\n* destination_concurrency=7\n",
                                                     "dest.cf");
        CPPUNIT_ASSERT(only_domains.provider_for("gmail.com") == nullptr);
        CPPUNIT_ASSERT(only_domains.provider_for("aspmx.l.google.com") == nullptr);
        // By domain, the mx: lines' settings never apply.
        Config cfg;
        auto only_providers = DestinationPolicy::parse("mx:.google.com destination_concurrency=10\n", "dest.cf");
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20), only_providers.integer("mail.google.com", "destination_concurrency", cfg));
    }

    void entry_settings_fall_back_to_the_config() {
        auto p = DestinationPolicy::parse("mx:.google.com destination_concurrency=10 destination_backoff=1h\n"
                                          "gmail.com smtp_tls_security_level=encrypt max_recipients_per_transaction=5\n",
                                          "dest.cf");
        Config cfg = Config::parse("max_messages_per_hour = 500\ndestination_concurrency = 30\n", "test.conf");
        const auto* google = p.provider_for("aspmx.l.google.com");
        CPPUNIT_ASSERT(google);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), p.integer(*google, "destination_concurrency", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3600), p.integer(*google, "destination_backoff", cfg));
        CPPUNIT_ASSERT_EQUAL(std::string("1h"), p.get(*google, "destination_backoff", cfg));
        // Not on the line: the global value, set in the file or the default.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(500), p.integer(*google, "max_messages_per_hour", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), p.integer(*google, "max_connections_per_minute", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(100), p.integer(*google, "max_messages_per_connection", Config()));
        // The entry overloads and the domain overloads agree.
        const auto* gmail = p.match("gmail.com");
        CPPUNIT_ASSERT(gmail);
        CPPUNIT_ASSERT_EQUAL(p.get("gmail.com", "smtp_tls_security_level", cfg),
                             p.get(*gmail, "smtp_tls_security_level", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5), p.integer(*gmail, "max_recipients_per_transaction", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(30), p.integer(*gmail, "destination_concurrency", cfg));
    }

    void bad_provider_lines() {
        for (const char* bad : {"mx:", "mx:.", "mx:..google.com", "mx:google..com", "mx:goo_gle.com", "mx:*.google.com",
                                "mx:google.com..", "mx:ex%ample.test", "mx:mx:.google.com"}) {
            auto e = error_of(std::string("# first\n") + bad + " destination_concurrency=1\n");
            CPPUNIT_ASSERT_MESSAGE(bad + (": " + e), e.find("dest.cf:2: not a provider pattern") == 0);
        }
        auto e = error_of("mx:." + std::string(64, 'a') + ".test destination_concurrency=1\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("dest.cf:1: not a provider pattern") == 0);
        CPPUNIT_ASSERT_EQUAL(std::string(""), error_of("mx:." + std::string(63, 'a') + ".test destination_concurrency=1\n"));
        // Settings kept per domain.
        for (const char* name : {"smtp_tls_security_level=encrypt", "smtp_tls_CAfile=/etc/ssl/ca.pem",
                                 "max_recipients_per_transaction=5"}) {
            e = error_of(std::string("\n\nmx:.google.com destination_concurrency=2 ") + name + "\n");
            std::string setting(name, std::string(name).find('='));
            CPPUNIT_ASSERT_MESSAGE(e, e == "dest.cf:3: " + setting + " is set per domain, not per provider");
        }
        // A provider line needs settings, checked like a domain's.
        e = error_of("mx:.google.com\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("dest.cf:1: no settings") == 0);
        e = error_of("mx:.google.com destination_concurrency=ten\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("dest.cf:1: destination_concurrency:") == 0);
        // A providers file holds provider lines only.
        e = error_of("mx:.google.com destination_concurrency=2\ngmail.com destination_concurrency=3\n", true);
        CPPUNIT_ASSERT_MESSAGE(e, e == "prov.cf:2: a providers file holds mx: lines only, not gmail.com");
        e = error_of("* destination_concurrency=3\n", true);
        CPPUNIT_ASSERT_MESSAGE(e, e.find("prov.cf:1: a providers file holds mx: lines only") == 0);
        e = error_of("mx:.google.com smtp_tls_security_level=encrypt\n", true);
        CPPUNIT_ASSERT_MESSAGE(e, e == "prov.cf:1: smtp_tls_security_level is set per domain, not per provider");
    }

    void providers_file_merges_line_by_line() {
        mxlane::test::TempDir dir;
        auto policy = dir.write("destinations", "gmail.com destination_concurrency=3\n"
                                                "mx:.GOOGLE.com. destination_concurrency=4\n");
        auto providers = dir.write("providers", "# shipped\n"
                                                "mx:.google.com destination_concurrency=10 max_messages_per_hour=9000\n"
                                                "mx:.outlook.com destination_concurrency=8\n");
        auto p = DestinationPolicy::load(policy, providers);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.entries().size());
        Config cfg;
        // destination_policy's line replaces the providers file's whole line: its hourly cap is gone too.
        const auto* google = p.provider_for("aspmx.l.google.com");
        CPPUNIT_ASSERT(google);
        CPPUNIT_ASSERT_EQUAL(2, google->line);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(4), p.integer(*google, "destination_concurrency", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), p.integer(*google, "max_messages_per_hour", cfg));
        // The other providers still come from the file.
        const auto* outlook = p.provider_for("example-test.mail.protection.outlook.com");
        CPPUNIT_ASSERT(outlook);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(8), p.integer(*outlook, "destination_concurrency", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), p.integer("gmail.com", "destination_concurrency", cfg));
        // Either file may be left out.
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), DestinationPolicy::load("", providers).entries().size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), DestinationPolicy::load(policy, "").entries().size());
        CPPUNIT_ASSERT(DestinationPolicy::load("", "").entries().empty());
        // Errors name the providers file and line; a missing file is an error.
        auto bad = dir.write("bad_providers", "mx:.google.com destination_concurrency=2\n\nexample.test destination_concurrency=1\n");
        try {
            DestinationPolicy::load(policy, bad);
            CPPUNIT_FAIL("a domain line in the providers file was accepted");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(bad + ":3: a providers file holds mx: lines only, not example.test", std::string(e.what()));
        }
        try {
            DestinationPolicy::load(policy, dir.file("absent"));
            CPPUNIT_FAIL("a missing providers file was accepted");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_MESSAGE(e.what(), std::string(e.what()).find(dir.file("absent") + ": cannot read") == 0);
        }
    }

    void shipped_providers_parse() {
        std::string text = shipped("providers");
        CPPUNIT_ASSERT(!text.empty());
        auto p = DestinationPolicy::parse_providers(text, "conf/providers");
        CPPUNIT_ASSERT(p.entries().size() >= 8);
        for (const char* host : {"aspmx.l.google.com", "alt2.aspmx.l.google.com", "aspmx2.googlemail.com",
                                 "smtp.google.com", "hotmail-com.olc.protection.outlook.com",
                                 "example-test.mail.protection.outlook.com", "mta5.am0.yahoodns.net",
                                 "mx01.mail.icloud.com", "mx00.emig.gmx.net", "mx-ha03.web.de"})
            CPPUNIT_ASSERT_MESSAGE(std::string("no provider for ") + host, p.provider_for(host) != nullptr);
        CPPUNIT_ASSERT(p.provider_for("mx.example.test") == nullptr);
        Config cfg;
        for (const auto& e : p.entries()) {
            auto n = p.integer(e, "destination_concurrency", cfg);
            CPPUNIT_ASSERT_MESSAGE(e.pattern, n >= 1 && n <= 10);
        }
    }

    // conf/destinations.example: its commented-out lines (the second word a name=value) parse as they are shown.
    void example_lines_parse() {
        std::istringstream in(shipped("destinations.example"));
        std::string line, lines;
        while (std::getline(in, line)) {
            std::istringstream words(line);
            std::string hash, pattern, setting;
            if (words >> hash >> pattern >> setting && hash == "#" && setting.find('=') != std::string::npos)
                lines += line.substr(2) + "\n";
        }
        auto p = DestinationPolicy::parse(lines, "destinations.example");
        CPPUNIT_ASSERT(p.entries().size() >= 7);
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), pattern_of(p.provider_for("aspmx.l.google.com")));
        CPPUNIT_ASSERT_EQUAL(std::string("gmail.com"), pattern_of(p.match("gmail.com")));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DestinationPolicyTest);
