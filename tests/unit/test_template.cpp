// test_template: {{column}} placeholders found, rendered once, kept out of headers' line structure.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/template.hpp"

using namespace mxlane;

class TemplateTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TemplateTest);
    CPPUNIT_TEST(finding);
    CPPUNIT_TEST(rendering);
    CPPUNIT_TEST(values_are_not_expanded_again);
    CPPUNIT_TEST(header_values_stay_on_one_line);
    CPPUNIT_TEST(renaming);
    CPPUNIT_TEST_SUITE_END();

    const std::vector<std::string> names{"first", "city"};

public:
    void finding() {
        CPPUNIT_ASSERT(!has_placeholders("plain text { {x} } {{ }} {{a b}} {{"));
        CPPUNIT_ASSERT(has_placeholders("Hi {{ first }}"));
        auto p = placeholders("{{first}} {{city}} {{ first }} {{address}}");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), p.size());
        CPPUNIT_ASSERT_EQUAL(std::string("first"), p[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("city"), p[1]);
        CPPUNIT_ASSERT_EQUAL(std::string("address"), p[2]);
        // "{{{x}}}": the first "{{" is not a placeholder, the second one is.
        CPPUNIT_ASSERT_EQUAL(std::string("x"), placeholders("{{{x}}}").at(0));
        CPPUNIT_ASSERT_EQUAL(std::size_t(6), placeholder_offset("{{a b}{{ x }}", "x"));
        CPPUNIT_ASSERT_EQUAL(std::string_view::npos, placeholder_offset("{{y}}", "x"));
    }

    void rendering() {
        std::string text = "To: {{address}}\nSubject: Hi {{first}}\n\nDear {{ first }} of {{city}}, {{nope}}.\n";
        CPPUNIT_ASSERT_EQUAL(std::string("To: a@b.test\nSubject: Hi Ann\n\nDear Ann of Oslo, {{nope}}.\n"),
                             render_template(text, names, {"Ann", "Oslo"}, "a@b.test"));
        CPPUNIT_ASSERT_EQUAL(std::string("{x}"), render_template("{{{first}}}", {"first"}, {"x"}, ""));
        CPPUNIT_ASSERT_EQUAL(std::string("no fields"), render_template("no fields", {}, {}, "a@b.test"));
        // A missing value renders empty rather than reading past the row.
        CPPUNIT_ASSERT_EQUAL(std::string("[]"), render_template("[{{city}}]", names, {"Ann"}, ""));
    }

    void values_are_not_expanded_again() {
        std::string out = render_template("\n{{first}} {{city}}", names, {"{{city}}", "Oslo"}, "");
        CPPUNIT_ASSERT_EQUAL(std::string("\n{{city}} Oslo"), out);
        out = render_template("\n{{first}}", names, {"{{address}}"}, "a@b.test");
        CPPUNIT_ASSERT_EQUAL(std::string("\n{{address}}"), out);
    }

    void header_values_stay_on_one_line() {
        std::string text = "Subject: {{first}}\r\n\r\n{{first}}\r\n";
        std::string out = render_template(text, names, {"x\r\nBcc: evil@b.test"}, "");
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: x  Bcc: evil@b.test\r\n\r\nx\r\nBcc: evil@b.test\r\n"), out);
    }

    void renaming() {
        CPPUNIT_ASSERT_EQUAL(std::string("{{address}} {{first}} {{address}}"),
                             rename_placeholder("{{email}} {{first}} {{ email }}", "email", "address"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(TemplateTest);
