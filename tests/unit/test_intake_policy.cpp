// test_intake_policy: which messages are bulk, at which milter step that is known, and the stored text.
#include <cppunit/extensions/HelperMacros.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <iterator>

#include "libshared/config_file.hpp"
#include "milter/intake_policy.hpp"
#include "milter/message_context.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using namespace mxlane::milter;

class IntakePolicyTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(IntakePolicyTest);
    CPPUNIT_TEST(senders_and_files);
    CPPUNIT_TEST(sasl_logins);
    CPPUNIT_TEST(client_networks);
    CPPUNIT_TEST(earliest_decision);
    CPPUNIT_TEST(job_names);
    CPPUNIT_TEST(job_keys);
    CPPUNIT_TEST(missing_pattern_file);
    CPPUNIT_TEST(stored_text);
    CPPUNIT_TEST(spill_and_limit);
    CPPUNIT_TEST(mail_params);
    CPPUNIT_TEST_SUITE_END();

    static std::string slurp(std::istream& in) {
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }

public:
    void senders_and_files() {
        test::TempDir dir;
        std::string file = dir.write("senders", "# bulk senders\n\n  campaigns.test  \n@promo.test\n");
        Config cfg = Config::parse("bulk_senders = news@list.test, " + file + "\n", "t.conf");
        IntakePolicy p = IntakePolicy::from_config(cfg);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.sender_patterns.size());
        CPPUNIT_ASSERT(sender_is_bulk(p, "News@List.test"));
        CPPUNIT_ASSERT(sender_is_bulk(p, "x@eu.campaigns.test"));
        CPPUNIT_ASSERT(sender_is_bulk(p, "y@promo.test"));
        CPPUNIT_ASSERT(!sender_is_bulk(p, "y@sub.promo.test"));
        CPPUNIT_ASSERT(!sender_is_bulk(p, "other@list.test"));
        CPPUNIT_ASSERT(!sender_is_bulk(p, ""));  // the null sender is never bulk
    }

    static sockaddr_in v4(const char* text) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        inet_pton(AF_INET, text, &a.sin_addr);
        return a;
    }
    static sockaddr_in6 v6(const char* text) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        inet_pton(AF_INET6, text, &a.sin6_addr);
        return a;
    }
    static bool may(const IntakePolicy& p, const sockaddr_in& a) {
        return client_may_send_bulk(p, reinterpret_cast<const sockaddr*>(&a));
    }
    static bool may(const IntakePolicy& p, const sockaddr_in6& a) {
        return client_may_send_bulk(p, reinterpret_cast<const sockaddr*>(&a));
    }

    void client_networks() {
        IntakePolicy def = IntakePolicy::from_config(Config::parse("", "t.conf"));  // 127.0.0.0/8, [::1]/128
        CPPUNIT_ASSERT(may(def, v4("127.0.0.1")));
        CPPUNIT_ASSERT(may(def, v4("127.200.3.4")));
        CPPUNIT_ASSERT(!may(def, v4("128.0.0.1")));
        CPPUNIT_ASSERT(!may(def, v4("192.0.2.7")));
        CPPUNIT_ASSERT(may(def, v6("::1")));
        CPPUNIT_ASSERT(!may(def, v6("::2")));
        CPPUNIT_ASSERT(may(def, v6("::ffff:127.0.0.9")));   // IPv4 in IPv6 clothes
        CPPUNIT_ASSERT(!may(def, v6("::ffff:192.0.2.7")));
        CPPUNIT_ASSERT(client_may_send_bulk(def, nullptr));  // the MTA's own (local) submission

        IntakePolicy p = IntakePolicy::from_config(
            Config::parse("bulk_clients = 192.0.2.0/25, [2001:db8::]/33, 198.51.100.7\n", "t.conf"));
        CPPUNIT_ASSERT(may(p, v4("192.0.2.127")));
        CPPUNIT_ASSERT(!may(p, v4("192.0.2.128")));
        CPPUNIT_ASSERT(may(p, v4("198.51.100.7")));
        CPPUNIT_ASSERT(!may(p, v4("198.51.100.8")));
        CPPUNIT_ASSERT(!may(p, v4("127.0.0.1")));            // not in the list any more
        CPPUNIT_ASSERT(!client_may_send_bulk(p, nullptr));
        CPPUNIT_ASSERT(may(p, v6("2001:db8:7fff::1")));
        CPPUNIT_ASSERT(!may(p, v6("2001:db8:8000::1")));

        IntakePolicy none = IntakePolicy::from_config(Config::parse("bulk_clients =\n", "t.conf"));
        CPPUNIT_ASSERT(!may(none, v4("127.0.0.1")));

        for (const char* bad : {"127.0.0.0/33", "[::1]/129", "localhost.test", "127.0.0.0/x", "127.0.0/8"}) {
            try {
                IntakePolicy::from_config(Config::parse(std::string("bulk_clients = ") + bad + "\n", "t.conf"));
                CPPUNIT_FAIL(std::string("accepted ") + bad);
            } catch (const ConfigError& e) {
                // The parameter table's validator: "t.conf:1: bulk_clients: not an address or network: ..."
                CPPUNIT_ASSERT(std::string(e.what()).find("t.conf:1: bulk_clients: ") != std::string::npos);
            }
        }
    }

    void sasl_logins() {
        IntakePolicy p;
        p.sasl_patterns = {"Mailer", "@corp.test"};
        CPPUNIT_ASSERT(sasl_login_is_bulk(p, "mailer"));
        CPPUNIT_ASSERT(sasl_login_is_bulk(p, "bob@corp.test"));
        CPPUNIT_ASSERT(!sasl_login_is_bulk(p, "alice"));
        CPPUNIT_ASSERT(!sasl_login_is_bulk(p, ""));
    }

    void earliest_decision() {
        IntakePolicy header_only;
        header_only.bulk_header = "X-Mxlane-Job";
        IntakeFacts none;
        CPPUNIT_ASSERT(decide(header_only, none, Step::envfrom) == Verdict::undecided);
        CPPUNIT_ASSERT(decide(header_only, none, Step::data) == Verdict::undecided);
        CPPUNIT_ASSERT(decide(header_only, none, Step::eoh) == Verdict::ordinary);
        IntakeFacts with_header;
        with_header.bulk_header_seen = true;
        CPPUNIT_ASSERT(decide(header_only, with_header, Step::eoh) == Verdict::bulk);

        IntakePolicy senders_only;  // no header rule, no count rule
        senders_only.sender_patterns = {"news@list.test"};
        CPPUNIT_ASSERT(decide(senders_only, none, Step::envfrom) == Verdict::ordinary);
        IntakeFacts sender;
        sender.bulk_sender = true;
        CPPUNIT_ASSERT(decide(senders_only, sender, Step::envfrom) == Verdict::bulk);

        IntakePolicy count_only;
        count_only.min_recipients = 3;
        IntakeFacts two;
        two.recipients = 2;
        CPPUNIT_ASSERT(decide(count_only, two, Step::envfrom) == Verdict::undecided);
        CPPUNIT_ASSERT(decide(count_only, two, Step::data) == Verdict::ordinary);
        IntakeFacts three;
        three.recipients = 3;
        CPPUNIT_ASSERT(decide(count_only, three, Step::data) == Verdict::bulk);

        IntakeFacts login;
        login.bulk_login = true;
        CPPUNIT_ASSERT(decide(count_only, login, Step::envfrom) == Verdict::bulk);
    }

    void job_names() {
        IntakePolicy p;
        p.bulk_header = "X-Mxlane-Job";
        CPPUNIT_ASSERT(is_bulk_header(p, "x-mxlane-job"));
        CPPUNIT_ASSERT(!is_bulk_header(p, "X-Mxlane-Jobs"));
        CPPUNIT_ASSERT(!is_bulk_header(IntakePolicy{}, "X-Mxlane-Job"));
        CPPUNIT_ASSERT_EQUAL(std::string("spring sale"), job_name_from_header("  spring\r\n\t sale "));
        CPPUNIT_ASSERT_EQUAL(std::string(), job_name_from_header(" \t"));
    }

    void job_keys() {
        Config cfg = Config::parse("job_idle_close = 2s\n", "t.conf");
        IntakePolicy p = IntakePolicy::from_config(cfg);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2000), p.job_idle_close_ms);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.job_key_headers.size());
        CPPUNIT_ASSERT_EQUAL(std::string("Feedback-ID"), p.job_key_headers[1]);
        auto key = [&](std::initializer_list<std::pair<const char*, const char*>> fields) {
            JobKeyFields f;
            for (const auto& [n, v] : fields) f.note(p, n, v);
            return job_key(f);
        };
        // bulk_header first, wherever it stands; its first value counts.
        JobKey k = key({{"List-Id", " News <news.shop.test>"}, {"x-mxlane-job", " spring"}, {"X-Mxlane-Job", "other"}});
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), k.name);
        CPPUNIT_ASSERT(k.by == KeyedBy::bulk_header);
        // An empty bulk_header value: a job of its own, as before.
        k = key({{"X-Mxlane-Job", " "}, {"List-Id", "news"}});
        CPPUNIT_ASSERT(k.by == KeyedBy::none && k.name.empty());
        // The first of job_key_headers in the list's order, not the message's; folded values unfolded.
        k = key({{"Subject", "Hi"}, {"X-Campaign-ID", "c-7"}, {"feedback-id", " a:b:\r\n\tshop"}});
        CPPUNIT_ASSERT_EQUAL(std::string("a:b: shop"), k.name);
        CPPUNIT_ASSERT(k.by == KeyedBy::key_header);
        // An empty key header names nothing; the next present one does.
        k = key({{"List-Id", " "}, {"X-Campaign-ID", "c-7"}});
        CPPUNIT_ASSERT_EQUAL(std::string("c-7"), k.name);
        // Else the Subject (the envelope sender scopes it), the first one.
        k = key({{"Subject", " November  news"}, {"Subject", "second"}});
        CPPUNIT_ASSERT_EQUAL(std::string("November news"), k.name);  // one line, runs of white space as one
        CPPUNIT_ASSERT(k.by == KeyedBy::sender_subject);
        k = key({{"From", "a@shop.test"}});
        CPPUNIT_ASSERT_EQUAL(std::string("(no subject)"), k.name);
        CPPUNIT_ASSERT(k.by == KeyedBy::sender_subject);
        // job_key_headers may be emptied: then only bulk_header and the Subject name jobs.
        IntakePolicy none = IntakePolicy::from_config(Config::parse("job_key_headers =\n", "t.conf"));
        JobKeyFields f;
        f.note(none, "List-Id", "news");
        f.note(none, "Subject", "S");
        CPPUNIT_ASSERT_EQUAL(std::string("S"), job_key(f).name);
    }

    void missing_pattern_file() {
        Config cfg = Config::parse("bulk_sasl_users = /nonexistent/mxlane-users\n", "t.conf");
        try {
            IntakePolicy::from_config(cfg);
            CPPUNIT_FAIL("a missing pattern file must be a configuration error");
        } catch (const ConfigError& e) {
            std::string what = e.what();
            CPPUNIT_ASSERT(what.find("t.conf: bulk_sasl_users: cannot read /nonexistent/mxlane-users") == 0);
        }
    }

    void stored_text() {
        test::TempDir dir;
        MessageContext m(dir.file("tmp"), 1 << 20);
        m.add_header("Subject", "two\n\tlines", false);
        m.add_header("To", " <a@b.test>", true);  // SMFIP_HDR_LEADSPC: the value keeps its space
        m.end_of_headers();
        m.add_body("Hello\r\n");
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: two\r\n\tlines\r\nTo: <a@b.test>\r\n\r\nHello\r\n"), slurp(m.text()));
        CPPUNIT_ASSERT_EQUAL(std::size_t(47), m.size());
        CPPUNIT_ASSERT(!m.eight_bit());
    }

    void spill_and_limit() {
        test::TempDir dir;
        MessageContext big(dir.file("tmp"), 4 << 20);
        big.end_of_headers();
        std::string chunk(65536, 'x');
        for (int i = 0; i < 20; ++i) big.add_body(chunk);  // 1.25 MiB: spilled
        big.add_body("\xc3\xa9\r\n");
        CPPUNIT_ASSERT(big.eight_bit());
        std::string text = slurp(big.text());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2 + 20 * 65536 + 4), text.size());
        CPPUNIT_ASSERT_EQUAL(text.size(), big.size());
        // the spill file was unlinked at once: nothing to clean up
        CPPUNIT_ASSERT(std::filesystem::is_empty(dir.file("tmp")));

        MessageContext small(dir.file("tmp"), 1024);
        small.add_body(std::string(1024, 'y'));
        CPPUNIT_ASSERT(!small.too_large());
        small.add_body("z");
        CPPUNIT_ASSERT(small.too_large());
    }

    void mail_params() {
        bool eight = false, utf8 = false;
        std::string kept = kept_mail_params({"SIZE=100", "BODY=8BITMIME", "SMTPUTF8", "AUTH=<>", "RET=HDRS"}, eight, utf8);
        CPPUNIT_ASSERT_EQUAL(std::string("BODY=8BITMIME SMTPUTF8 RET=HDRS"), kept);
        CPPUNIT_ASSERT(eight);
        CPPUNIT_ASSERT(utf8);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(IntakePolicyTest);
