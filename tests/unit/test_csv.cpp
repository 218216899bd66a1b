// test_csv: RFC 4180 reading (quotes, line breaks, line numbers, errors) and writing round trips.
#include <cppunit/extensions/HelperMacros.h>

#include <sstream>

#include "libshared/csv.hpp"

using namespace mxlane;

namespace {

std::vector<std::vector<std::string>> read_all(const std::string& text, std::vector<std::size_t>* lines = nullptr) {
    std::istringstream in(text);
    CsvReader r(in, 64);
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> f;
    while (r.next(f)) {
        rows.push_back(f);
        if (lines) lines->push_back(r.line());
    }
    return rows;
}

std::size_t error_line(const std::string& text) {
    try {
        read_all(text);
    } catch (const CsvError& e) {
        return e.line();
    }
    return 0;
}

}  // namespace

class CsvTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(CsvTest);
    CPPUNIT_TEST(plain_and_quoted);
    CPPUNIT_TEST(line_numbers);
    CPPUNIT_TEST(errors);
    CPPUNIT_TEST(round_trip);
    CPPUNIT_TEST(formulas_made_inert);
    CPPUNIT_TEST_SUITE_END();

public:
    void plain_and_quoted() {
        auto rows = read_all("\xEF\xBB\xBF" "address,name\r\na@b.test,\"Doe, \"\"Jo\"\"\"\r\nc@d.test,\r\n");
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), rows.size());
        CPPUNIT_ASSERT_EQUAL(std::string("address"), rows[0][0]);
        CPPUNIT_ASSERT_EQUAL(std::string("Doe, \"Jo\""), rows[1][1]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), rows[2].size());
        CPPUNIT_ASSERT_EQUAL(std::string(""), rows[2][1]);
        rows = read_all("a,\"x\ny\"\nb,z");  // LF endings, no final line break
        CPPUNIT_ASSERT_EQUAL(std::string("x\ny"), rows[0][1]);
        CPPUNIT_ASSERT_EQUAL(std::string("z"), rows[1][1]);
        rows = read_all("a,\"\"\n");
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), rows[0].size());
        CPPUNIT_ASSERT_EQUAL(std::string(""), rows[0][1]);
    }

    void line_numbers() {
        std::vector<std::size_t> lines;
        read_all("h\n\n\"a\nb\"\r\nc\n\nd\n", &lines);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), lines.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), lines[0]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), lines[1]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(5), lines[2]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(7), lines[3]);
    }

    void errors() {
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), error_line("h\n\"never closed\n\n"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), error_line("h\nok\n\"a\"b\n"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), error_line("h\n" + std::string(100, 'x') + "\n"));
    }

    void round_trip() {
        std::vector<std::string> in = {"a@b.test", "with, comma", "quote \"q\"", "line\r\nbreak", " pad", "", "{{x}}"};
        std::ostringstream out;
        write_csv_record(out, in);
        write_csv_record(out, {"last"});
        std::istringstream back(out.str());
        CsvReader r(back);
        std::vector<std::string> f;
        CPPUNIT_ASSERT(r.next(f));
        CPPUNIT_ASSERT(in == f);
        CPPUNIT_ASSERT(r.next(f));
        CPPUNIT_ASSERT_EQUAL(std::string("last"), f.at(0));
        CPPUNIT_ASSERT(!r.next(f));
        CPPUNIT_ASSERT_EQUAL(std::string("plain"), csv_field("plain"));
    }

    void formulas_made_inert() {
        std::vector<std::string> in = {"=HYPERLINK(\"http://x.test\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                       "'quoted", "-news@example.com", "plain", "", "a=b", "3"};
        std::ostringstream out;
        write_csv_record(out, in, CsvCells::inert);
        CPPUNIT_ASSERT_EQUAL(std::string("\"'=HYPERLINK(\"\"http://x.test\"\")\",'+1,'-2+3,'@SUM(A1),'\tx,\"'\rx\","
                                         "''quoted,'-news@example.com,plain,,a=b,3\r\n"),
                             out.str());
        std::istringstream back(out.str());
        CsvReader r(back);
        std::vector<std::string> f;
        CPPUNIT_ASSERT(r.next(f));
        CPPUNIT_ASSERT_EQUAL(in.size(), f.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            CPPUNIT_ASSERT(f[i].empty() || std::string_view("=+-@\t\r").find(f[i].front()) == std::string_view::npos);
            CPPUNIT_ASSERT_EQUAL(in[i], csv_uninert(f[i]));
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(CsvTest);
