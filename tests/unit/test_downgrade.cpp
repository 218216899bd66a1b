// test_downgrade: 8-bit messages re-encoded as 7-bit for servers without 8BITMIME (RFC 6152, 2045, 2046).
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "qrunner/smtp/downgrade.hpp"
#include "qrunner/smtp/message_data.hpp"

using namespace mxlane::smtp;

namespace {

// RFC 2045 6.7 decoding, written apart from the encoder: soft breaks joined, =XX decoded.
std::string qp_decode(const std::string& qp) {
    std::string out;
    for (std::size_t i = 0; i < qp.size(); ++i) {
        if (qp[i] != '=') {
            out += qp[i];
        } else if (qp.compare(i + 1, 2, "\r\n") == 0) {
            i += 2;
        } else {
            out += static_cast<char>(std::stoi(qp.substr(i + 1, 2), nullptr, 16));
            i += 2;
        }
    }
    return out;
}

bool seven_bit(const std::string& s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

std::size_t longest_line(const std::string& s) {
    std::size_t longest = 0, start = 0;
    for (std::size_t e; (e = s.find("\r\n", start)) != std::string::npos; start = e + 2)
        longest = std::max(longest, e - start);
    return longest;
}

// The body after the first blank line.
std::string body_of(const std::string& wire) { return wire.substr(wire.find("\r\n\r\n") + 4); }

std::string down(const std::string& stored) { return downgrade_to_7bit(to_wire(stored).text); }

}  // namespace

class DowngradeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DowngradeTest);
    CPPUNIT_TEST(quoted_printable_rules);
    CPPUNIT_TEST(leaf_part_becomes_quoted_printable);
    CPPUNIT_TEST(message_without_mime_gets_mime_headers);
    CPPUNIT_TEST(multipart_converts_only_the_8bit_parts);
    CPPUNIT_TEST(nested_message_and_multipart);
    CPPUNIT_TEST(seven_bit_and_encoded_parts_stay);
    CPPUNIT_TEST(dot_stuffing_kept);
    CPPUNIT_TEST(hostile_structure);
    CPPUNIT_TEST_SUITE_END();

public:
    void quoted_printable_rules() {
        CPPUNIT_ASSERT_EQUAL(std::string("caf=C3=A9 =3D 1"), quoted_printable("caf\xc3\xa9 = 1"));
        // trailing white space is encoded; inside a line it stays
        CPPUNIT_ASSERT_EQUAL(std::string("a b=20\r\nc=09"), quoted_printable("a b \r\nc\t"));
        // long lines get soft breaks, no line over 76, and decode back
        std::string line(200, 'x');
        line += "\xe9";
        std::string qp = quoted_printable(line);
        CPPUNIT_ASSERT(longest_line(qp + "\r\n") <= 76);
        CPPUNIT_ASSERT_EQUAL(line, qp_decode(qp));
        // text that runs on after a soft break never starts a line with "-" (no false delimiter)
        std::string run_on(25, '\xff');
        std::string ff;
        for (int i = 0; i < 25; ++i) ff += "=FF";
        CPPUNIT_ASSERT_EQUAL(ff + "=\r\n=2D-b", quoted_printable(run_on + "--b"));
        std::string all;
        for (int c = 1; c < 256; ++c)
            if (c != '\r' && c != '\n') all += static_cast<char>(c);
        CPPUNIT_ASSERT(seven_bit(quoted_printable(all)));
        CPPUNIT_ASSERT_EQUAL(all, qp_decode(quoted_printable(all)));
    }

    void leaf_part_becomes_quoted_printable() {
        std::string body = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\r\nzweite Zeile\r\n";
        std::string out = down("From: a@b.test\r\nMIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n\r\n" + body);
        CPPUNIT_ASSERT(seven_bit(out));
        CPPUNIT_ASSERT(out.find("Content-Transfer-Encoding: quoted-printable\r\n") != std::string::npos);
        CPPUNIT_ASSERT(out.find("8bit") == std::string::npos);
        CPPUNIT_ASSERT(out.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(body, qp_decode(body_of(out)));
    }

    void message_without_mime_gets_mime_headers() {
        std::string out = down("From: a@b.test\nSubject: hi\n\nna\xefve\n");
        CPPUNIT_ASSERT(seven_bit(out));
        CPPUNIT_ASSERT(out.find("MIME-Version: 1.0\r\n") != std::string::npos);
        CPPUNIT_ASSERT(out.find("Content-Type: text/plain; charset=unknown-8bit\r\n") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("na\xefve\r\n"), qp_decode(body_of(out)));
        // a Content-Type without MIME-Version is read as MIME: a multipart is converted part by part
        std::string parts = down("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; "
                                 "charset=latin1\n\n\xe9\n--b--\n");
        CPPUNIT_ASSERT(seven_bit(parts));
        CPPUNIT_ASSERT(parts.find("MIME-Version: 1.0\r\nContent-Transfer-Encoding") == std::string::npos);
        CPPUNIT_ASSERT(parts.find("--b\r\nContent-Type: text/plain; charset=latin1\r\n"
                                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--b--") !=
                       std::string::npos);
    }

    void multipart_converts_only_the_8bit_parts() {
        std::string b64 = "aGVsbG8=\r\n";
        std::string in =
            "From: a@b.test\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed;\r\n\tboundary=\"=-b 1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "preamble\r\n"
            "--=-b 1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe0 la carte\r\n"
            "--=-b 1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            b64 +
            "--=-b 1  \r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
            "--=-b 1--\r\nepilogue\r\n";
        std::string out = down(in);
        CPPUNIT_ASSERT(seven_bit(out));
        // the multipart says 7bit now; its first part is quoted-printable; the others are as they were
        CPPUNIT_ASSERT(out.find("boundary=\"=-b 1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\npreamble\r\n") !=
                       std::string::npos);
        CPPUNIT_ASSERT(out.find("--=-b 1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E0 la carte\r\n--=-b 1\r\n") !=
                       std::string::npos);
        CPPUNIT_ASSERT(out.find("Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--=-b 1  \r\n") !=
                       std::string::npos);
        CPPUNIT_ASSERT(out.find("\r\n\r\nplain ascii\r\n--=-b 1--\r\nepilogue\r\n") != std::string::npos);
    }

    void nested_message_and_multipart() {
        std::string in =
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
            "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
            "--inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
            "--inner--\r\n"
            "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Subject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nfor\xc3\xaat\r\n"
            "--outer--\r\n";
        std::string out = down(in);
        CPPUNIT_ASSERT(seven_bit(out));
        CPPUNIT_ASSERT(out.find("=C3=A9t=C3=A9\r\n--inner--") != std::string::npos);
        CPPUNIT_ASSERT(out.find("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n") !=
                       std::string::npos);
        CPPUNIT_ASSERT(out.find("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                                "for=C3=AAt\r\n--outer--") != std::string::npos);
    }

    void seven_bit_and_encoded_parts_stay() {
        std::string plain = to_wire("From: a@b.test\nSubject: x\n\nhello\n").text;
        CPPUNIT_ASSERT_EQUAL(plain, downgrade_to_7bit(plain));
        // 8-bit only in a header field: nothing to encode in the body, sent as received
        std::string header8 = to_wire("Subject: caf\xc3\xa9\n\nhello\n").text;
        CPPUNIT_ASSERT_EQUAL(header8, downgrade_to_7bit(header8));
        // a part that claims quoted-printable is left alone even with 8-bit bytes in it
        std::string qp = to_wire("MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n\xe9\n").text;
        CPPUNIT_ASSERT_EQUAL(qp, downgrade_to_7bit(qp));
    }

    void dot_stuffing_kept() {
        // a body line starting with "." in an encoded part: its "." is written =2E, so no line starts with "."
        std::string out = down("From: a@b.test\n\n.\xe9\n..two\n");
        CPPUNIT_ASSERT(out.find("\r\n\r\n=2E=E9\r\n=2E.two\r\n") != std::string::npos);
        // one that stays as it is stays stuffed
        out = down("From: a@b.test\nContent-Transfer-Encoding: base64\n\n.\xe9\n");
        CPPUNIT_ASSERT(out.find("\r\n\r\n..\xe9\r\n") != std::string::npos);
    }

    void hostile_structure() {
        // no blank line, a boundary that never comes, nesting deeper than anyone writes: no crash, all 7-bit
        // where an encoding applies, and every byte of a structure we do not follow is kept
        CPPUNIT_ASSERT_EQUAL(to_wire("Subject: \xe9").text, down("Subject: \xe9"));
        std::string open = down("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\n\xe9\n");
        CPPUNIT_ASSERT(open.find("\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n") !=
                       std::string::npos);
        std::string deep = "MIME-Version: 1.0\r\n";
        for (int i = 0; i < 200; ++i) deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) +
                                              "\r\n\r\n--b" + std::to_string(i) + "\r\n";
        deep += "\r\n\xe9\r\n";
        CPPUNIT_ASSERT(!downgrade_to_7bit(deep).empty());
        CPPUNIT_ASSERT_EQUAL(std::string(), downgrade_to_7bit(""));
        // a part whose long 8-bit line holds "--b": the parts stay two, whatever the line breaks
        std::string split = down("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\n" +
                                 std::string(25, '\xff') + "--b\n--b\n\nsecond\n--b--\n");
        CPPUNIT_ASSERT_EQUAL(split, downgrade_to_7bit(split));
        std::size_t delimiters = 0;
        for (std::size_t p = 0; (p = split.find("\r\n--b", p)) != std::string::npos; ++p) ++delimiters;
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), delimiters);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DowngradeTest);
