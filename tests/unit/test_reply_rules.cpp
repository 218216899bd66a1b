// test_reply_rules: the reply rules file: parsing, errors with FILE:LINE, first match wins, the shipped rules.
#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <sstream>

#include "libshared/reply_rules.hpp"

using namespace mxlane;

namespace {

std::string error_of(const std::string& text) {
    try {
        ReplyRules::parse(text, "rules");
    } catch (const ReplyRulesError& e) {
        return e.what();
    }
    return "";
}

std::string shipped() {
    std::ifstream in(std::string(MXLANE_SRCDIR) + "/conf/reply_rules");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

class ReplyRulesTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ReplyRulesTest);
    CPPUNIT_TEST(parse_and_match);
    CPPUNIT_TEST(bad_input);
    CPPUNIT_TEST(shipped_rules);
    CPPUNIT_TEST_SUITE_END();

public:
    void parse_and_match() {
        auto rules = ReplyRules::parse("# comment\n"
                                       "\n"
                                       "/^4\\d\\d 4\\.7\\.28 /   provider  suspend 1h\n"
                                       "  /^450 4\\.2\\.1 /  recipient defer  \n"
                                       "/4\\.7\\.650/ provider throttle 1/m 90m\n"
                                       "/\\[TS(S0[45]|04)\\]/ provider suspend 2h\n"
                                       "/^5\\d\\d 5\\.7\\.(26|515) / job hold\n"
                                       "/a\\/b/ recipient bounce\n",
                                       "rules");
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), rules.size());
        const ReplyRule* r = rules.match("421 4.7.28 Our system has detected an unusual rate");
        CPPUNIT_ASSERT(r && r->scope == RuleScope::provider && r->action == RuleAction::suspend);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3600), static_cast<std::int64_t>(r->duration.count()));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:3"), r->where);
        r = rules.match("451 4.7.650 the mail server has been temporarily RATE LIMITED");
        CPPUNIT_ASSERT(r && r->action == RuleAction::throttle);
        CPPUNIT_ASSERT_DOUBLES_EQUAL(1.0 / 60, r->per_second, 1e-9);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5400), static_cast<std::int64_t>(r->duration.count()));
        r = rules.match("421 4.7.0 [tss04] Messages temporarily deferred");  // any case
        CPPUNIT_ASSERT(r && r->action == RuleAction::suspend && r->duration.count() == 7200);
        r = rules.match("550 5.7.26 Unauthenticated mail");
        CPPUNIT_ASSERT(r && r->scope == RuleScope::job && r->action == RuleAction::hold);
        CPPUNIT_ASSERT(rules.match("550 5.7.260 not this one") == nullptr);
        r = rules.match("550 5.0.0 a/b");
        CPPUNIT_ASSERT(r && r->action == RuleAction::bounce && r->pattern == "a\\/b");
        CPPUNIT_ASSERT(rules.match("250 2.0.0 ok") == nullptr);
        CPPUNIT_ASSERT(rules.match(std::string("550 5.1.1 \xff\xfe bad bytes")) == nullptr);  // not valid UTF-8: no crash
        // The first rule that matches decides.
        auto two = ReplyRules::parse("/rate/ recipient defer\n/rate/ destination suspend 5m\n", "two");
        CPPUNIT_ASSERT(two.match("450 4.2.1 rate")->action == RuleAction::defer);
    }

    void bad_input() {
        CPPUNIT_ASSERT_EQUAL(std::string("rules:2: a rule starts with /REGEX/"), error_of("# ok\nrate recipient defer\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: no closing / after the regular expression"),
                             error_of("/abc recipient defer\n"));
        CPPUNIT_ASSERT(error_of("/(abc/ recipient defer\n").starts_with("rules:1: bad regular expression at offset"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: unknown scope \"everyone\" (recipient, destination, provider, job, source)"),
                             error_of("/x/ everyone defer\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: unknown action \"panic\" (defer, suspend, throttle, hold, bounce)"),
                             error_of("/x/ recipient panic\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: suspend wants a duration such as 30m, not \"soon\""),
                             error_of("/x/ destination suspend soon\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: suspend wants a duration such as 30m"),
                             error_of("/x/ destination suspend\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: throttle wants a rate such as 1/m, not \"fast\""),
                             error_of("/x/ provider throttle fast 1h\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: unexpected \"later\" after the action"),
                             error_of("/x/ recipient defer later\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: hold applies to a job only"), error_of("/x/ destination hold\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: bounce applies to a recipient only"), error_of("/x/ job bounce\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: suspend applies to a destination, provider or source"),
                             error_of("/x/ recipient suspend 1h\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: want /REGEX/ SCOPE ACTION"), error_of("/x/\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("rules:1: empty regular expression"), error_of("// recipient defer\n"));
        CPPUNIT_ASSERT_THROW(ReplyRules::load("/nonexistent/reply_rules"), ReplyRulesError);
    }

    // conf/reply_rules parses, and the big providers' replies get the action it promises.
    void shipped_rules() {
        auto rules = ReplyRules::parse(shipped(), "conf/reply_rules");
        CPPUNIT_ASSERT(rules.size() >= 8);
        auto action = [&](const char* line) {
            const ReplyRule* r = rules.match(line);
            return r ? std::string(scope_name(r->scope)) + " " + std::string(action_name(r->action)) : "none";
        };
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"), action("421 4.7.28 unusual rate of unsolicited mail"));
        CPPUNIT_ASSERT_EQUAL(std::string("recipient defer"),
                             action("450 4.2.1 The user is receiving mail at a rate that prevents delivery"));
        CPPUNIT_ASSERT_EQUAL(std::string("source throttle"), action("451 4.7.650 rate limited due to IP reputation"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"), action("421 4.7.0 [TSS04] deferred due to unexpected volume"));
        // Authentication failures are left to auth_failure_hold (the job hold lines are there, commented out).
        CPPUNIT_ASSERT_EQUAL(std::string("none"), action("550 5.7.26 Unauthenticated email is not accepted"));
        CPPUNIT_ASSERT_EQUAL(std::string("none"), action("550 5.7.515 Access denied, authentication level"));
        CPPUNIT_ASSERT_EQUAL(std::string("destination suspend"), action("421 4.3.2 Service not available, closing"));
        CPPUNIT_ASSERT_EQUAL(std::string("destination suspend"), action("451 4.7.1 too many connections from your IP"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"), action("451 4.7.500 Server busy. Please try again later"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"),
                             action("550 5.7.1 Unfortunately, messages from [192.0.2.7] weren't sent. (S3150)"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"),
                             action("421 4.7.0 [TS01] Messages from 192.0.2.7 temporarily deferred"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"), action("421 4.7.0 [HM08] Message from 192.0.2.7 throttled"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"),
                             action("421 4.7.0 comcast 192.0.2.7 Too many sessions RL000010 opened"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"),
                             action("554 5.7.1 comcast 192.0.2.7 Comcast block for spam. BL000000"));
        CPPUNIT_ASSERT_EQUAL(std::string("provider suspend"),
                             action("421 4.7.0 mx.gmx.test (mxgmx017) Nemesis ESMTP Service not available"));
        CPPUNIT_ASSERT_EQUAL(std::string("destination suspend"),
                             action("554 5.7.1 Service unavailable; client host [192.0.2.7] blocked using a block list"));
        CPPUNIT_ASSERT_EQUAL(std::string("none"), action("550 5.1.1 user unknown"));
        CPPUNIT_ASSERT_EQUAL(std::string("none"), action("451 4.3.0 temporary lookup failure"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ReplyRulesTest);
