// test_config: mxlane.conf syntax, expansion, value checks, and the destination policy table.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/config_file.hpp"
#include "libshared/destination_policy.hpp"
#include "libshared/params.hpp"
#include "tests/unit/temp_dir.hpp"

using mxlane::Config;
using mxlane::ConfigError;
using mxlane::DestinationPolicy;

namespace {

// The error message of parsing text, or "" when it parsed.
std::string error_of(const std::string& text) {
    try {
        Config::parse(text, "test.conf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

std::string policy_error_of(const std::string& text) {
    try {
        DestinationPolicy::parse(text, "dest.cf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

class ConfigTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConfigTest);
    CPPUNIT_TEST(defaults);
    CPPUNIT_TEST(name_value_and_comments);
    CPPUNIT_TEST(continuation_lines);
    CPPUNIT_TEST(expansion);
    CPPUNIT_TEST(durations);
    CPPUNIT_TEST(lists);
    CPPUNIT_TEST(errors_name_file_and_line);
    CPPUNIT_TEST(missing_file);
    CPPUNIT_TEST(policy_first_match_wins);
    CPPUNIT_TEST(policy_errors);
    CPPUNIT_TEST(address_values_checked_when_read);
    CPPUNIT_TEST(restart_column);
    CPPUNIT_TEST_SUITE_END();

public:
    void defaults() {
        Config c;
        CPPUNIT_ASSERT_EQUAL(std::string("/var/spool/mxlane"), c.get("queue_directory"));
        CPPUNIT_ASSERT_EQUAL(std::string("X-Mxlane-Job"), c.get("bulk_header"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(52428800), c.integer("message_size_limit"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5 * 86400), c.seconds("max_queue_lifetime"));
        CPPUNIT_ASSERT_EQUAL(std::string("direct"), c.get("delivery_mode"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(25), c.integer("smtp_port"));
        auto retry = c.seconds_list("retry_schedule");
        CPPUNIT_ASSERT_EQUAL(std::size_t(7), retry.size());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(300), retry.front());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(4 * 3600), retry.back());
        CPPUNIT_ASSERT(!c.get("smtp_helo_name").empty());  // $myhostname: the host's name
        CPPUNIT_ASSERT(!c.set_in_file("queue_directory"));
    }

    void name_value_and_comments() {
        auto c = Config::parse("# a comment\n\nqueue_directory = /tmp/q\n   # indented comment\n"
                               "threads=4\nbulk_header =X-Bulk   \n",
                               "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::string("/tmp/q"), c.get("queue_directory"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(4), c.integer("threads"));
        CPPUNIT_ASSERT_EQUAL(std::string("X-Bulk"), c.get("bulk_header"));
        CPPUNIT_ASSERT(c.set_in_file("threads"));
        CPPUNIT_ASSERT(!c.set_in_file("smtp_port"));
        // The last setting of a name wins, as in main.cf.
        auto d = Config::parse("threads = 3\nthreads = 5\n", "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5), d.integer("threads"));
        // An empty value is allowed where the parameter allows it.
        auto e = Config::parse("log_file =\n", "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::string(""), e.get("log_file"));
    }

    void continuation_lines() {
        auto c = Config::parse("bulk_senders = a@x.test,\n  @y.test\n\tz.test\nthreads = 2\n", "t.conf");
        auto l = c.list("bulk_senders");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), l.size());
        CPPUNIT_ASSERT_EQUAL(std::string("@y.test"), l[1]);
        CPPUNIT_ASSERT_EQUAL(std::string("z.test"), l[2]);
        // A comment line inside a continued value does not end it (main.cf rule).
        auto d = Config::parse("retry_schedule = 1s\n# note\n  2s\n", "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), d.seconds_list("retry_schedule").size());
    }

    void expansion() {
        auto c = Config::parse("queue_directory = /tmp/q\nlog_file = $queue_directory/log\n"
                               "relay_password_file = ${queue_directory}/pw\nmyhostname = mta.test\n",
                               "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::string("/tmp/q/log"), c.get("log_file"));
        CPPUNIT_ASSERT_EQUAL(std::string("/tmp/q/pw"), c.get("relay_password_file"));
        CPPUNIT_ASSERT_EQUAL(std::string("mta.test"), c.get("smtp_helo_name"));
        CPPUNIT_ASSERT_EQUAL(std::string("$myhostname"), c.unexpanded("smtp_helo_name"));
        auto d = Config::parse("bulk_header = X-$$Cost\n", "t.conf");
        CPPUNIT_ASSERT_EQUAL(std::string("X-$Cost"), d.get("bulk_header"));
    }

    void durations() {
        std::int64_t s = 0;
        CPPUNIT_ASSERT(mxlane::parse_duration("90", s) && s == 90);
        CPPUNIT_ASSERT(mxlane::parse_duration("30s", s) && s == 30);
        CPPUNIT_ASSERT(mxlane::parse_duration("5m", s) && s == 300);
        CPPUNIT_ASSERT(mxlane::parse_duration("2h", s) && s == 7200);
        CPPUNIT_ASSERT(mxlane::parse_duration("5d", s) && s == 432000);
        CPPUNIT_ASSERT(!mxlane::parse_duration("", s));
        CPPUNIT_ASSERT(!mxlane::parse_duration("m", s));
        CPPUNIT_ASSERT(!mxlane::parse_duration("5x", s));
        CPPUNIT_ASSERT(!mxlane::parse_duration("-5m", s));
        CPPUNIT_ASSERT(!mxlane::parse_duration("1.5h", s));
        auto c = Config::parse("retry_schedule = 1s 2s, 1m\nmax_queue_lifetime = 3s\n", "t.conf");
        auto r = c.seconds_list("retry_schedule");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), r.size());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(60), r[2]);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), c.seconds("max_queue_lifetime"));
    }

    void lists() {
        auto l = mxlane::split_list(" a, b  c,,d ");
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), l.size());
        CPPUNIT_ASSERT_EQUAL(std::string("d"), l[3]);
        CPPUNIT_ASSERT(mxlane::split_list("  ").empty());
    }

    void errors_name_file_and_line() {
        auto e = error_of("threads = 2\nno_such_thing = 1\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:2:") == 0 && e.find("unknown parameter: no_such_thing") != std::string::npos);
        e = error_of("\n\nthreads = many\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:3:") == 0 && e.find("threads") != std::string::npos);
        e = error_of("threads = 0\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("out of range") != std::string::npos);
        e = error_of("smtp_port = 70000\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:1:") == 0 && e.find("out of range") != std::string::npos);
        e = error_of("max_queue_lifetime = soon\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("not a duration") != std::string::npos);
        e = error_of("retry_schedule = 1m 2x\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("2x") != std::string::npos);
        e = error_of("delivery_mode = fast\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("direct|relay|combined") != std::string::npos);
        e = error_of("  threads = 2\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:1:") == 0 && e.find("continuation") != std::string::npos);
        e = error_of("threads 2\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:1:") == 0 && e.find("name = value") != std::string::npos);
        e = error_of("bad-name = 2\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("bad parameter name") != std::string::npos);
        e = error_of("log_file = $nothing_here/x\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:1:") == 0 && e.find("$nothing_here") != std::string::npos);
        e = error_of("log_file = ${queue_directory\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("unterminated") != std::string::npos);
        e = error_of("log_file = $log_file\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("loops") != std::string::npos);
        e = error_of("log_file = a$\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("lone $") != std::string::npos);
        // A value continued onto the next line is reported at the line where it starts.
        e = error_of("threads = 1\nsmtp_port =\n  oops\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:2:") == 0);
    }

    void missing_file() {
        mxlane::test::TempDir dir;
        try {
            Config::load(dir.file("absent.conf"));
            CPPUNIT_FAIL("a missing file must be an error");
        } catch (const ConfigError& e) {
            std::string msg = e.what();
            CPPUNIT_ASSERT_MESSAGE(msg, msg.find("absent.conf") != std::string::npos &&
                                            msg.find("No such file") != std::string::npos);
        }
        auto c = Config::load(dir.write("ok.conf", "threads = 7\n"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7), c.integer("threads"));
        CPPUNIT_ASSERT_EQUAL(dir.file("ok.conf"), c.file());
    }

    void policy_first_match_wins() {
        auto p = DestinationPolicy::parse("# comment\n"
                                          "gmail.com   destination_concurrency=10 max_messages_per_hour=20000\n"
                                          ".example.net smtp_tls_security_level=encrypt\n"
                                          "example.net destination_concurrency=3\n"
                                          "*           destination_concurrency=20\n"
                                          "other.test  destination_concurrency=1\n",
                                          "dest.cf");
        Config cfg;
        CPPUNIT_ASSERT_EQUAL(std::int64_t(10), p.integer("GMail.com", "destination_concurrency", cfg));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20000), p.integer("gmail.com", "max_messages_per_hour", cfg));
        CPPUNIT_ASSERT_EQUAL(std::string("encrypt"), p.get("mx.example.net", "smtp_tls_security_level", cfg));
        // ".example.net" covers subdomains only; the parent itself matches its own line.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3), p.integer("example.net", "destination_concurrency", cfg));
        CPPUNIT_ASSERT_EQUAL(std::string("may"), p.get("example.net", "smtp_tls_security_level", cfg));
        // "*" matches before the later, more specific line: first match wins.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20), p.integer("other.test", "destination_concurrency", cfg));
        // A setting the matching line does not name falls back to the global value.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(50), p.integer("gmail.com", "max_recipients_per_transaction", cfg));
        CPPUNIT_ASSERT(DestinationPolicy().match("a.test") == nullptr);
        CPPUNIT_ASSERT(DestinationPolicy::load("").entries().empty());
    }

    void policy_errors() {
        auto e = policy_error_of("gmail.com destination_concurrency=ten\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("dest.cf:1:") == 0 && e.find("not a whole number") != std::string::npos);
        e = policy_error_of("\ngmail.com queue_directory=/x\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("dest.cf:2:") == 0 && e.find("not a per-destination setting") != std::string::npos);
        e = policy_error_of("gmail.com\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("no settings") != std::string::npos);
        e = policy_error_of("gmail.com concurrency\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("name=value") != std::string::npos);
        e = policy_error_of("a.test smtp_tls_security_level=maybe\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("none|may|encrypt|verify") != std::string::npos);
    }

    // dns_servers, relay_host and milter_socket are checked by the table's
    // validator, so every program refuses them with file:line at start.
    void address_values_checked_when_read() {
        auto e = error_of("\ndns_servers = 127.0.0.1:53, bogus\n");
        CPPUNIT_ASSERT_MESSAGE(e, e.find("test.conf:2: dns_servers:") == 0 && e.find("bogus") != std::string::npos);
        for (const char* bad : {"dns_servers = 127.0.0.1:99999", "dns_servers = [localhost]:53",
                                "dns_servers = 256.1.1.1", "relay_host = [127.0.0.1", "relay_host = [h]x",
                                "relay_host = h:0", "relay_host = :25", "milter_socket = /run/x.sock",
                                "milter_socket = inet:x@127.0.0.1", "milter_socket = unix:"})
            CPPUNIT_ASSERT_MESSAGE(bad, error_of(std::string(bad) + "\n").find("test.conf:1:") == 0);
        for (const char* good : {"dns_servers = 127.0.0.1 192.0.2.1:5353, ::1, [::1]:53", "dns_servers =",
                                 "relay_host = [127.0.0.1]:10025", "relay_host = relay.example",
                                 "relay_host = relay.example:587", "relay_host = [::1]:25",
                                 "milter_socket = unix:/run/mxlane/milter.sock",
                                 "milter_socket = inet:10025@127.0.0.1", "milter_socket = inet6:10025@[::1]"})
            CPPUNIT_ASSERT_MESSAGE(good + std::string(": ") + error_of(std::string(good) + "\n"),
                                   error_of(std::string(good) + "\n").empty());
    }

    void restart_column() {
        for (const char* name : {"queue_directory", "mail_owner", "threads", "milter_socket", "syslog_name",
                                 "dns_servers"})
            CPPUNIT_ASSERT_MESSAGE(name, mxlane::find_param(name)->restart);
        for (const char* name : {"max_connections", "relay_host", "retry_schedule", "notify_sender"})
            CPPUNIT_ASSERT_MESSAGE(name, !mxlane::find_param(name)->restart);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConfigTest);
