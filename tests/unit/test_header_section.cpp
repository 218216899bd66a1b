// test_header_section: where a header section ends, fields with folded values, names without case.
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "libshared/header_section.hpp"

using namespace mxlane;

class HeaderSectionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(HeaderSectionTest);
    CPPUNIT_TEST(section_size);
    CPPUNIT_TEST(fields_and_folding);
    CPPUNIT_TEST(fields_of_lines);
    CPPUNIT_TEST(names_without_case);
    CPPUNIT_TEST(single_line_values);
    CPPUNIT_TEST_SUITE_END();

public:
    void section_size() {
        const auto npos = std::string_view::npos;
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), header_section_size("A: b\r\n\r\nbody"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), header_section_size("A: b\n\nbody"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), header_section_size("A: b\r\n\nbody"));  // CRLF then LF
        CPPUNIT_ASSERT_EQUAL(std::size_t(13), header_section_size("A: b\n\tc\nD: e\n\nx\n\ny"));  // the first one
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), header_section_size("\r\nbody"));  // no fields at all
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), header_section_size("\nbody\n\nmore"));
        CPPUNIT_ASSERT_EQUAL(npos, header_section_size("A: b\r\nC: d\r\n"));  // no empty line
        CPPUNIT_ASSERT_EQUAL(npos, header_section_size(""));
    }

    void fields_and_folding() {
        auto f = parse_header_section("Subject: one\r\n two\r\n\tthree \r\nFrom:  Ann <a@x.test>\r\nnot a field\r\n"
                                      "X-Empty:\r\n\r\nBody: not a header\r\n");
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), f.size());
        CPPUNIT_ASSERT_EQUAL(std::string("Subject"), f[0].name);
        CPPUNIT_ASSERT_EQUAL(std::string("one two\tthree"), f[0].value);  // RFC 5322 3.2.2: the WSP stays
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), f[0].first_line);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), f[0].end_line);
        CPPUNIT_ASSERT_EQUAL(std::string("Ann <a@x.test>"), f[1].value);
        CPPUNIT_ASSERT_EQUAL(std::string(), f[2].name);  // a line without a colon
        CPPUNIT_ASSERT_EQUAL(std::string("X-Empty"), f[3].name);
        CPPUNIT_ASSERT_EQUAL(std::string(), f[3].value);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), f[3].first_line);
        CPPUNIT_ASSERT(!find_header_field(f, "Body"));  // past the empty line
        // LF-only text, and a last line without an end.
        auto g = parse_header_section("A : 1\nb: 2\n  3");
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), g.size());
        CPPUNIT_ASSERT_EQUAL(std::string("A"), g[0].name);
        CPPUNIT_ASSERT_EQUAL(std::string("2  3"), g[1].value);
        CPPUNIT_ASSERT(parse_header_section("\r\nA: b\r\n").empty());
    }

    void fields_of_lines() {
        // Lines without their ends, a range of them (as a MIME part's header is).
        std::vector<std::string_view> lines = {"body", "Content-Type: text/plain;", "\tcharset=utf-8",
                                               "Content-Transfer-Encoding: 8bit", ""};
        auto f = parse_header_fields(lines, 1, 4);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), f.size());
        CPPUNIT_ASSERT_EQUAL(std::string("text/plain;\tcharset=utf-8"), f[0].value);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), f[0].first_line);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), f[0].end_line);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), f[1].first_line);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), f[1].end_line);
        // A continuation with nothing before it starts a field of its own.
        std::vector<std::string_view> odd = {" X: y"};
        auto o = parse_header_fields(odd, 0, 1);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), o.size());
        CPPUNIT_ASSERT_EQUAL(std::string("X"), o[0].name);
    }

    void names_without_case() {
        CPPUNIT_ASSERT(same_field_name("Content-Type", "content-type"));
        CPPUNIT_ASSERT(same_field_name("X-MXLANE-JOB", "x-mxlane-job"));
        CPPUNIT_ASSERT(!same_field_name("X-Mxlane-Jobs", "X-Mxlane-Job"));
        CPPUNIT_ASSERT(!same_field_name("", "a"));
        auto f = parse_header_section("message-id: <1@x>\nMessage-ID: <2@x>\n\n");
        CPPUNIT_ASSERT_EQUAL(std::string("<1@x>"), find_header_field(f, "Message-Id")->value);  // the first
        CPPUNIT_ASSERT(!find_header_field(f, "Date"));
    }

    void single_line_values() {
        CPPUNIT_ASSERT_EQUAL(std::string("spring sale"), single_line_value("  spring\r\n\t sale "));
        CPPUNIT_ASSERT_EQUAL(std::string("a b c"), single_line_value("a\nb\r\rc"));
        CPPUNIT_ASSERT_EQUAL(std::string(), single_line_value(" \t\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("x"), single_line_value("x"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(HeaderSectionTest);
