// test_address: address checks, domain extraction and bulk_senders pattern matching.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/address.hpp"

using namespace mxlane;

class AddressTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AddressTest);
    CPPUNIT_TEST(parsing);
    CPPUNIT_TEST(patterns);
    CPPUNIT_TEST_SUITE_END();

public:
    void parsing() {
        CPPUNIT_ASSERT_EQUAL(std::string("a@b.test"), strip_brackets(" <a@b.test> "));
        CPPUNIT_ASSERT_EQUAL(std::string("b.test"), domain_of("A@B.Test"));
        CPPUNIT_ASSERT_EQUAL(std::string("A"), local_part_of("A@B.Test"));
        CPPUNIT_ASSERT(valid_address("ann@example.com"));
        CPPUNIT_ASSERT(valid_address("first.last+tag@sub.example.co.uk"));
        CPPUNIT_ASSERT(valid_address("user@[127.0.0.1]"));
        CPPUNIT_ASSERT(valid_address("j\xc3\xb6rg@b\xc3\xbc" "cher.test"));
        CPPUNIT_ASSERT(!valid_address(""));
        CPPUNIT_ASSERT(!valid_address("no-at-sign"));
        CPPUNIT_ASSERT(!valid_address("@example.com"));
        CPPUNIT_ASSERT(!valid_address("a@"));
        CPPUNIT_ASSERT(!valid_address("a b@example.com"));
        CPPUNIT_ASSERT(!valid_address("a@exa..mple.com"));
        CPPUNIT_ASSERT(!valid_address("a@example.com."));
        CPPUNIT_ASSERT(!valid_address("a@ex ample.com"));
        CPPUNIT_ASSERT(!valid_address("<a@example.com>"));
    }

    void patterns() {
        CPPUNIT_ASSERT(address_matches("News@Example.com", "news@example.com"));
        CPPUNIT_ASSERT(!address_matches("other@example.com", "news@example.com"));
        CPPUNIT_ASSERT(address_matches("x@example.com", "@example.com"));
        CPPUNIT_ASSERT(!address_matches("x@sub.example.com", "@example.com"));
        CPPUNIT_ASSERT(address_matches("x@example.com", "example.com"));
        CPPUNIT_ASSERT(address_matches("x@sub.example.com", "example.com"));
        CPPUNIT_ASSERT(!address_matches("x@badexample.com", "example.com"));
        CPPUNIT_ASSERT(!address_matches("x@example.com", ""));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AddressTest);
