// test_text: trim, the one trimming function of every part.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "libshared/text.hpp"

using namespace mxlane;

class TextTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TextTest);
    CPPUNIT_TEST(trim_blanks_and_line_ends);
    CPPUNIT_TEST(trim_other_sets);
    CPPUNIT_TEST(base64_rfc4648_vectors);
    CPPUNIT_TEST_SUITE_END();

public:
    void trim_blanks_and_line_ends() {
        CPPUNIT_ASSERT_EQUAL(std::string("a b"), std::string(trim(" \t a b\r\n")));
        CPPUNIT_ASSERT_EQUAL(std::string("x"), std::string(trim("x")));
        CPPUNIT_ASSERT(trim("").empty());
        CPPUNIT_ASSERT(trim(" \t\r\n ").empty());
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb"), std::string(trim("\na\r\nb\n")));  // inside stays
        CPPUNIT_ASSERT_EQUAL(std::string("\va"), std::string(trim("\va ")));         // only the four
        // A view into the argument, not a copy.
        std::string s = "  word  ";
        CPPUNIT_ASSERT(trim(s).data() == s.data() + 2);
    }

    void trim_other_sets() {
        // RFC 5322 WSP only: a bare CR at the end of a header value is not folding white space.
        CPPUNIT_ASSERT_EQUAL(std::string("v\r"), std::string(trim(" \tv\r", wsp_chars)));
        CPPUNIT_ASSERT_EQUAL(std::string("b"), std::string(trim("--b--", "-")));
        CPPUNIT_ASSERT(trim("----", "-").empty());
    }

    // RFC 4648 10, and bytes >= 0x80 and NUL.
    void base64_rfc4648_vectors() {
        const char* vectors[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
                                    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
        for (auto& v : vectors) CPPUNIT_ASSERT_EQUAL(std::string(v[1]), base64(v[0]));
        CPPUNIT_ASSERT_EQUAL(std::string("/wD+"), base64(std::string("\xff\x00\xfe", 3)));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(TextTest);
