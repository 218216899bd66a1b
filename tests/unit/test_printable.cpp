// test_printable: untrusted text made printable for logs and terminals, valid UTF-8 for JSON, safe in log lines.
#include <cppunit/extensions/HelperMacros.h>

#include <boost/json/parse.hpp>

#include "libshared/json.hpp"
#include "libshared/log.hpp"
#include "libshared/printable.hpp"

using namespace mxlane;

namespace {

const std::string kFffd = "\xEF\xBF\xBD";
const std::string kInjection =
    "x to=<x@y.test>, relay=z, delay=1, delays=1/1/1/1, dsn=2.0.0, status=sent (250 ok)";

}  // namespace

class PrintableTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PrintableTest);
    CPPUNIT_TEST(printable_keeps_text);
    CPPUNIT_TEST(printable_replaces_controls);
    CPPUNIT_TEST(printable_replaces_ill_formed);
    CPPUNIT_TEST(valid_utf8_replacement);
    CPPUNIT_TEST(json_documents_are_valid);
    CPPUNIT_TEST(log_text_has_no_fields);
    CPPUNIT_TEST(delivery_line_detail_is_defused);
    CPPUNIT_TEST_SUITE_END();

public:
    void printable_keeps_text() {
        CPPUNIT_ASSERT_EQUAL(std::string("550 5.1.1 <ann@example.com>: no such user"),
                             printable("550 5.1.1 <ann@example.com>: no such user"));
        CPPUNIT_ASSERT_EQUAL(std::string("Benutzer unbekannt: M\xC3\xBCller \xE2\x82\xAC \xF0\x9F\x93\xA7"),
                             printable("Benutzer unbekannt: M\xC3\xBCller \xE2\x82\xAC \xF0\x9F\x93\xA7"));
        CPPUNIT_ASSERT_EQUAL(std::string(""), printable(""));
    }

    void printable_replaces_controls() {
        CPPUNIT_ASSERT_EQUAL(std::string("a?b?c?d?e?"), printable("a\rb\nc\td\x1b" "e\x7f"));
        CPPUNIT_ASSERT_EQUAL(std::string("?]0;pwned??[31mred"), printable("\x1b]0;pwned\x07\x1b[31mred"));
        CPPUNIT_ASSERT_EQUAL(std::string("a b"), printable(std::string("a\0b", 3), ' '));
        // C1 controls as UTF-8 (U+009B is CSI), bidi overrides and isolates, line separators
        CPPUNIT_ASSERT_EQUAL(std::string("?31m"), printable("\xC2\x9B" "31m"));
        CPPUNIT_ASSERT_EQUAL(std::string("abc?def?g?"), printable("abc\xE2\x80\xAE" "def\xE2\x81\xA6g\xE2\x80\xA8"));
    }

    void printable_replaces_ill_formed() {
        CPPUNIT_ASSERT_EQUAL(std::string("M?ller"), printable("M\xFCller"));     // Latin-1
        CPPUNIT_ASSERT_EQUAL(std::string("??"), printable("\xC0\xAF"));         // overlong '/': C0 never starts one
        CPPUNIT_ASSERT_EQUAL(std::string("?x"), printable("\xE2\x82x"));        // truncated: one maximal subpart
        CPPUNIT_ASSERT_EQUAL(std::string("???"), printable("\xED\xA0\x80"));    // a surrogate: three bytes, none starts a subpart
        CPPUNIT_ASSERT_EQUAL(std::string("?"), printable("\xF0\x9F\x93"));      // cut off at the end
    }

    void valid_utf8_replacement() {
        CPPUNIT_ASSERT_EQUAL("Benutzer unbekannt: M" + kFffd + "ller", valid_utf8("Benutzer unbekannt: M\xFCller"));
        CPPUNIT_ASSERT_EQUAL(kFffd + kFffd, valid_utf8("\xC0\xAF"));
        CPPUNIT_ASSERT_EQUAL(kFffd + "x", valid_utf8("\xE2\x82x"));
        CPPUNIT_ASSERT_EQUAL(kFffd + kFffd + kFffd, valid_utf8("\xED\xA0\x80"));
        CPPUNIT_ASSERT_EQUAL(kFffd + kFffd + kFffd, valid_utf8("\xF4\x90\x80"));  // above U+10FFFF: F4, 90, 80
        CPPUNIT_ASSERT_EQUAL(std::string("ok \x1b[0m \xC3\xBC"), valid_utf8("ok \x1b[0m \xC3\xBC"));  // controls stay (JSON escapes them)
        CPPUNIT_ASSERT(is_valid_utf8("\xC3\xBC\xE2\x82\xAC"));
        CPPUNIT_ASSERT(!is_valid_utf8("\xFC"));
    }

    void json_documents_are_valid() {
        json::object row{{"name", "M\xFCller \x1b]0;x\x07"}, {"n", 3}};
        row["k\xFF"] = "v";
        std::string text = json::serialize(json::array{row, nullptr});
        CPPUNIT_ASSERT(is_valid_utf8(text));
        auto back = boost::json::parse(text);  // throws when not JSON
        CPPUNIT_ASSERT_EQUAL("M" + kFffd + "ller \x1b]0;x\x07",
                             std::string(back.as_array()[0].as_object().at("name").as_string()));
        CPPUNIT_ASSERT(back.as_array()[0].as_object().contains("k" + kFffd));
        CPPUNIT_ASSERT(text.find('\x1b') == std::string::npos);  // escaped as \u001b
    }

    void log_text_has_no_fields() {
        std::string s = log::safe_text(kInjection + "\r\nJ1: To=<a@b>, STATUS=sent \x1b[2J");
        CPPUNIT_ASSERT(s.find("to=") == std::string::npos && s.find("To=") == std::string::npos);
        CPPUNIT_ASSERT(s.find("status=") == std::string::npos && s.find("STATUS=") == std::string::npos);
        CPPUNIT_ASSERT(s.find_first_of("\r\n\x1b") == std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("x to:<x@y.test>, relay=z, delay=1, delays=1/1/1/1, dsn=2.0.0, status:sent (250 ok)"),
                             log::safe_text(kInjection));
    }

    void delivery_line_detail_is_defused() {
        log::Delivery d;
        d.id = "J00001A";
        d.to = "ann@example.com";
        d.relay = "mx.example.com[127.0.0.1]:25";
        d.dsn = "5.1.1";
        d.status = "bounced";
        d.detail = "host mx said: 550 5.1.1 " + kInjection + "\n\x1b]0;x\x07 M\xFCller";
        std::string line = log::format_delivery(d);
        CPPUNIT_ASSERT(line.starts_with("J00001A: to=<ann@example.com>, relay=mx.example.com[127.0.0.1]:25, delay=0, "
                                        "delays=0/0/0/0, dsn=5.1.1, status=bounced (host mx said: 550 5.1.1 x to:<x@y.test>"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count(line, "to="));
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count(line, "status="));
        CPPUNIT_ASSERT(line.find_first_of("\r\n\x1b\x07\xFC") == std::string::npos);
        CPPUNIT_ASSERT(line.ends_with("status:sent (250 ok)??]0;x? M?ller)"));
    }

private:
    static std::size_t count(const std::string& s, const std::string& what) {
        std::size_t n = 0;
        for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
        return n;
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PrintableTest);
