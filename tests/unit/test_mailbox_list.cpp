// test_mailbox_list: RFC 5322 address lists: comments, quoted strings, display names, angle addresses, groups.
#include <cppunit/extensions/HelperMacros.h>

#include "qrunner/ctl/mailbox_list.hpp"

using namespace mxlane::ctl;

namespace {

std::vector<std::string> addresses(const std::string& value) {
    std::vector<std::string> out;
    for (const auto& m : parse_address_list(value)) out.push_back(m.address);
    return out;
}

std::string one(const std::string& value) {
    auto all = addresses(value);
    CPPUNIT_ASSERT_EQUAL_MESSAGE(value, std::size_t(1), all.size());
    return all[0];
}

bool refused(const std::string& value) {
    try {
        parse_address_list(value);
    } catch (const AddressSyntaxError&) {
        return true;
    }
    return false;
}

}  // namespace

class MailboxListTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MailboxListTest);
    CPPUNIT_TEST(plain_forms);
    CPPUNIT_TEST(comments_are_not_addresses);
    CPPUNIT_TEST(quoted_strings);
    CPPUNIT_TEST(several_mailboxes_and_groups);
    CPPUNIT_TEST(syntax_errors);
    CPPUNIT_TEST_SUITE_END();

public:
    void plain_forms() {
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("ann@example.com"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("<ann@example.com>"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("Ann Smith <ann@example.com>"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann.smith@mail.example.com"), one("Ann . Smith < ann.smith @ mail.example.com >"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@[192.0.2.1]"), one("ann@[192.0.2.1]"));
        CPPUNIT_ASSERT_EQUAL(std::string("j\xC3\xBCrgen@b\xC3\xBC" "cher.test"), one("J\xC3\xBCrgen <j\xC3\xBCrgen@b\xC3\xBC" "cher.test>"));
        auto m = parse_address_list("\"Smith, Ann\" <ann@example.com>");
        CPPUNIT_ASSERT_EQUAL(std::string("Smith, Ann"), m.at(0).display_name);
    }

    void comments_are_not_addresses() {
        CPPUNIT_ASSERT_EQUAL(std::string("other@elsewhere.test"), one("other@elsewhere.test (<news@shop.test>)"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("ann@example.com (Ann (the (nested)) \\) one)"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("(news@shop.test) Ann <(x) ann@example.com (y)>"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("ann(c)@(c)example.com"));
    }

    void quoted_strings() {
        CPPUNIT_ASSERT_EQUAL(std::string("other@elsewhere.test"), one("\"news@shop.test\" <other@elsewhere.test>"));
        CPPUNIT_ASSERT_EQUAL(std::string("other@elsewhere.test"), one("\"<news@shop.test>, x\" <other@elsewhere.test>"));
        CPPUNIT_ASSERT_EQUAL(std::string("\"ann smith\"@example.com"), one("\"ann smith\"@example.com"));
        CPPUNIT_ASSERT_EQUAL(std::string("ann@example.com"), one("\"ann\"@example.com"));
        CPPUNIT_ASSERT_EQUAL(std::string("\"a\\\"b\"@example.com"), one("<\"a\\\"b\"@example.com>"));
    }

    void several_mailboxes_and_groups() {
        CPPUNIT_ASSERT(addresses("ann@a.test, Bob <bob@b.test>") == std::vector<std::string>({"ann@a.test", "bob@b.test"}));
        CPPUNIT_ASSERT(addresses("Team: ann@a.test, <bob@b.test>;, cy@c.test") ==
                       std::vector<std::string>({"ann@a.test", "bob@b.test", "cy@c.test"}));
        CPPUNIT_ASSERT(addresses("undisclosed-recipients:;").empty());
        CPPUNIT_ASSERT(addresses("ann@a.test,,").size() == 1);
        CPPUNIT_ASSERT(addresses("").empty());
    }

    void syntax_errors() {
        CPPUNIT_ASSERT(refused("Ann"));                          // a name, no address
        CPPUNIT_ASSERT(refused("ann@example.com <bob@b.test>")); // an addr-spec then an angle address
        CPPUNIT_ASSERT(refused("Ann <ann@example.com"));         // no '>'
        CPPUNIT_ASSERT(refused("<ann>"));                        // no domain
        CPPUNIT_ASSERT(refused("ann@example.com (open"));        // comment not closed
        CPPUNIT_ASSERT(refused("\"open <ann@example.com>"));     // quote not closed
        CPPUNIT_ASSERT(refused("Team: ann@a.test"));             // group not closed
        CPPUNIT_ASSERT(refused("<@relay.test:ann@a.test>"));     // a source route
        CPPUNIT_ASSERT(refused("ann@@a.test"));
        CPPUNIT_ASSERT(refused("ann.@a.test"));
        CPPUNIT_ASSERT(refused("ann@a.test\x01"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MailboxListTest);
