// test_mime: quoted-printable, base64 and RFC 2047 round trips; MIME-aware rendering of templates per recipient.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/mime_codec.hpp"
#include "libshared/render_plan.hpp"

using namespace mxlane;
using namespace mxlane::mime;

namespace {

// The text with every line end CRLF (what smtp::to_wire makes of it).
std::string crlf(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
        out += text[i];
    }
    return out;
}

std::string render(const RenderPlan& plan, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, std::string_view address, bool utf8) {
    return crlf(render_message(plan, names, values, address, utf8));
}

// The lines of a CRLF text.
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (;;) {
        std::size_t end = text.find("\r\n", pos);
        out.push_back(text.substr(pos, end == std::string::npos ? end : end - pos));
        if (end == std::string::npos) return out;
        pos = end + 2;
    }
}

// The decoded body of the part whose header holds `marker` (the text after its blank line up to the next "--").
std::string body_after(const std::string& msg, const std::string& marker) {
    std::size_t at = msg.find(marker);
    std::size_t start = msg.find("\r\n\r\n", at) + 4;
    std::size_t end = msg.find("\r\n--", start);
    return msg.substr(start, end - start);
}

const std::string kBoundary = "==b0undary==";
const std::string kHostile = "a=b =3D =4F\r\n--" + kBoundary + "\r\n--" + kBoundary + "--\r\n" + std::string(300, '=') +
                             " José Müller ☃ \t\r\n.\r\nFrom here\r\n";

std::string two_part(const std::string& subject) {
    return "From: Shop <news@shop.test>\n"
           "To: {{name}} <{{address}}>\n"
           "Subject: " + subject + "\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/alternative; boundary=\"" + kBoundary + "\"\n"
           "\n"
           "--" + kBoundary + "\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: quoted-printable\n"
           "\n"
           "Hallo {{na=\n"
           "me}}, link: {{link}}\n"
           "--" + kBoundary + "\n"
           "Content-Type: text/html; charset=utf-8\n"
           "Content-Transfer-Encoding: base64\n"
           "\n" + base64_encode("<p>Hallo {{name}}</p><a href=\"{{link}}\">x</a>") + "\n"
           "--" + kBoundary + "\n"
           "Content-Type: image/png\n"
           "Content-Transfer-Encoding: base64\n"
           "\n"
           "e3tuYW1lfX0=\n"
           "--" + kBoundary + "--\n";
}

}  // namespace

class MimeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MimeTest);
    CPPUNIT_TEST(quoted_printable_round_trip);
    CPPUNIT_TEST(base64_round_trip);
    CPPUNIT_TEST(encoded_words);
    CPPUNIT_TEST(two_part_template);
    CPPUNIT_TEST(header_grammar);
    CPPUNIT_TEST(charsets);
    CPPUNIT_TEST(seven_bit_parts);
    CPPUNIT_TEST(placeholders_elsewhere);
    CPPUNIT_TEST(renaming);
    CPPUNIT_TEST_SUITE_END();

public:
    void quoted_printable_round_trip() {
        for (const std::string& s : {kHostile, std::string(""), std::string("x "), std::string(200, 'y'),
                                     std::string("=\r\n=\r\n"), std::string("trailing\t\r\nspace \r\n")}) {
            std::string enc = qp_encode(s);
            CPPUNIT_ASSERT_EQUAL(s, qp_decode(enc));
            for (const auto& l : lines_of(enc)) {
                CPPUNIT_ASSERT(l.size() <= 76);
                CPPUNIT_ASSERT(!l.starts_with("-") && !l.starts_with(".") && !l.starts_with("From "));
                CPPUNIT_ASSERT(l.empty() || (l.back() != ' ' && l.back() != '\t'));
                for (char c : l) CPPUNIT_ASSERT(c >= 33 && c <= 126 ? true : c == ' ' || c == '\t');
            }
        }
        // A soft break at the end, blanks before a line end dropped, a malformed "=" kept.
        CPPUNIT_ASSERT_EQUAL(std::string("ab\r\ncd=G"), qp_decode("a=\nb  \r\ncd=G"));
    }

    void base64_round_trip() {
        for (std::size_t n = 0; n < 200; n += 7) {
            std::string s;
            for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(i * 37);
            std::string enc = base64_encode(s);
            CPPUNIT_ASSERT_EQUAL(s, base64_decode(enc));
            for (const auto& l : lines_of(enc)) CPPUNIT_ASSERT(l.size() <= 76);
        }
        CPPUNIT_ASSERT_EQUAL(std::string("TWFu"), base64_encode("Man"));
    }

    void encoded_words() {
        for (const std::string& s : {std::string("José Müller"), std::string(200, 'x') + "é", std::string("☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃"), std::string("a☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃"),
                                     std::string("a_b=c?d \"q\" =?utf-8?q?x?=")}) {
            auto words = encode_words(s);
            std::string joined;
            for (const auto& w : words) {
                CPPUNIT_ASSERT(w.size() <= 75);
                // no padding but in the last word (decoders that join the words' text first stop at it)
                CPPUNIT_ASSERT(&w == &words.back() || !w.ends_with("=?="));
                CPPUNIT_ASSERT(w.find_first_of(" \t\r\n\"()<>,") == std::string::npos);
                joined += (joined.empty() ? "" : " ") + w;
            }
            CPPUNIT_ASSERT_EQUAL(s, decode_words(joined));
        }
        CPPUNIT_ASSERT_EQUAL(std::string("Grüße aus Köln x"),
                             decode_words("=?ISO-8859-1?Q?Gr=FC=DFe_aus?= =?utf-8?B?IEvDtmxu?= x"));
    }

    void two_part_template() {
        RenderPlan plan(two_part("Hallo {{name}}, your offer"));
        CPPUNIT_ASSERT(plan.personalised());
        auto names = placeholders(plan.template_text());
        CPPUNIT_ASSERT(std::find(names.begin(), names.end(), "name") != names.end());  // split by a soft break
        CPPUNIT_ASSERT(std::find(names.begin(), names.end(), "link") != names.end());
        std::string link = "https://shop.test/o?id=4F&u=3D9";
        std::string out = render(plan, {"name", "link"}, {"José Müller", link}, "jose@shop.test", false);
        for (const auto& l : lines_of(out)) CPPUNIT_ASSERT(l.size() <= 78);
        CPPUNIT_ASSERT(out.find("Subject: =?UTF-8?Q?Hallo_Jos=C3=A9_M=C3=BCller=2C_your_offer?=\r\n") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("Hallo José Müller, link: " + link),
                             qp_decode(body_after(out, "quoted-printable")));
        CPPUNIT_ASSERT_EQUAL(std::string("<p>Hallo José Müller</p><a href=\"" + link + "\">x</a>"),
                             base64_decode(body_after(out, "text/html")));
        // The image holds "{{name}}" once decoded, and is copied as it is.
        CPPUNIT_ASSERT(out.find("Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\ne3tuYW1lfX0=\r\n") !=
                       std::string::npos);
        // A value holding the boundary, "=" and line breaks stays inside its part.
        out = render(plan, {"name", "link"}, {kHostile, kHostile}, "jose@shop.test", false);
        CPPUNIT_ASSERT_EQUAL(std::string("Hallo " + kHostile + ", link: " + kHostile),
                             qp_decode(body_after(out, "quoted-printable")));
        std::size_t delimiters = 0;
        for (const auto& l : lines_of(out)) delimiters += l.starts_with("--" + kBoundary);
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), delimiters);
    }

    void header_grammar() {
        RenderPlan plan(two_part("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_{{name}}?="));
        std::string out = render(plan, {"name"}, {"Ann \"Q\" Lee\r\nBcc: x@evil.test"}, "a@shop.test", false);
        // No header line added; the display name quoted; the address stays one.
        std::string head = out.substr(0, out.find("\r\n\r\n") + 2);
        CPPUNIT_ASSERT(head.find("\nBcc:") == std::string::npos);
        CPPUNIT_ASSERT(out.find("To: \"Ann \\\"Q\\\" Lee  Bcc: x@evil.test\" <a@shop.test>\r\n") != std::string::npos);
        std::size_t subject = head.find("Subject: ") + 9;
        CPPUNIT_ASSERT_EQUAL(std::string("Grüße Ann \"Q\" Lee  Bcc: x@evil.test"),
                             decode_words(head.substr(subject, head.find("\r\n", subject) - subject)));
        // An address value cannot add recipients or leave its brackets.
        out = render(RenderPlan("To: {{name}} <{{address}}>\n\nx\n"), {"name"}, {"José"}, "a@b.test>, c@d.test",
                             false);
        CPPUNIT_ASSERT_EQUAL(std::string("To: =?UTF-8?Q?Jos=C3=A9?= <a@b.testc@d.test>\r\n\r\nx\r\n"), out);
        // With SMTPUTF8 a display name stays UTF-8.
        out = render(RenderPlan("To: {{name}} <{{address}}>\nSubject: {{name}}\n\nx\n"), {"name"}, {"José"},
                             "a@b.test", true);
        CPPUNIT_ASSERT_EQUAL(std::string("To: \"José\" <a@b.test>\r\nSubject: José\r\n\r\nx\r\n"), out);
        // A long subject is folded at spaces, each line within 78 columns.
        out = render(RenderPlan("Subject: {{s}}\n\nx\n"), {"s"}, {std::string(50, 'a') + " " + std::string(50, 'b')},
                             "a@b.test", false);
        CPPUNIT_ASSERT_EQUAL("Subject: " + std::string(50, 'a') + "\r\n " + std::string(50, 'b') + "\r\n\r\nx\r\n", out);
        // Other fields are rendered as written, line breaks made spaces.
        out = render(RenderPlan("List-Unsubscribe: <https://shop.test/u?a={{address}}>\n\nx\n"), {}, {},
                             "a@b.test\r\nX: y", false);
        CPPUNIT_ASSERT_EQUAL(std::string("List-Unsubscribe: <https://shop.test/u?a=a@b.test  X: y>\r\n\r\nx\r\n"), out);
        // A field's name is never rendered: no value can rename a field or make its line no field.
        out = render(RenderPlan("{{f}}: <{{address}}>\n\nx\n"), {"f"}, {""}, "a@b.test", false);
        CPPUNIT_ASSERT_EQUAL(std::string("{{f}}: <a@b.test>\r\n\r\nx\r\n"), out);
        out = render(RenderPlan("X-{{f}}: y\n\nx\n"), {"f"}, {"Bcc"}, "a@b.test", false);
        CPPUNIT_ASSERT_EQUAL(std::string("X-{{f}}: y\r\n\r\nx\r\n"), out);
    }

    void charsets() {
        std::string latin = "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
                            "Content-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe {{name}}\n";
        RenderPlan plan(latin);
        std::string out = render(plan, {"name"}, {"José"}, "a@b.test", false);
        CPPUNIT_ASSERT(out.find("charset=iso-8859-1") != std::string::npos);
        CPPUNIT_ASSERT(out.find("Gr=FC=DFe Jos=E9") != std::string::npos);
        out = render(plan, {"name"}, {"José ☃"}, "a@b.test", false);  // no snowman in Latin-1
        CPPUNIT_ASSERT(out.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
        CPPUNIT_ASSERT(out.find("Gr=C3=BC=C3=9Fe Jos=C3=A9 =E2=98=83") != std::string::npos);
        // Other parameters kept as written, a ';' inside quotes too.
        std::string named = "MIME-Version: 1.0\nContent-Type: text/plain; name=\"a;b.txt\"; charset=us-ascii; format=flowed\n\n"
                            "Hi {{name}}\n";
        out = render(RenderPlan(named), {"name"}, {"José"}, "a@b.test", false);
        CPPUNIT_ASSERT(out.find("Content-Type: text/plain; name=\"a;b.txt\"; charset=utf-8; format=flowed\r\n") !=
                       std::string::npos);
    }

    void seven_bit_parts() {
        // No MIME headers at all: a non-ASCII value makes it UTF-8 quoted-printable.
        RenderPlan plain("Subject: x\n\nHallo {{name}}\n");
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: x\r\n\r\nHallo Ann\r\n"), render(plain, {"name"}, {"Ann"}, "", false));
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                         "Content-Transfer-Encoding: quoted-printable\r\n\r\nHallo Jos=C3=A9\r\n"),
                             render(plain, {"name"}, {"José"}, "", false));
        // A 7bit part of a multipart where a value would start a delimiter line.
        std::string msg = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                          "Content-Type: text/plain\n\n{{name}}\n--b--\n";
        std::string out = render(RenderPlan(msg), {"name"}, {"--b--"}, "", false);
        CPPUNIT_ASSERT(out.find("Content-Transfer-Encoding: quoted-printable\r\n\r\n=2D-b--\r\n--b--") != std::string::npos);
        CPPUNIT_ASSERT(render(RenderPlan(msg), {"name"}, {"Ann"}, "", false).find("\r\n\r\nAnn\r\n--b--") !=
                       std::string::npos);
    }

    void placeholders_elsewhere() {
        // A filename in a part's header and a non-text part's text: rendered as written, on one line.
        std::string msg = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                          "Content-Type: application/json\nContent-Disposition: attachment; filename=\"{{name}}.json\"\n\n"
                          "{\"n\": \"{{name}}\"}\n--b--\n";
        RenderPlan plan(msg);
        CPPUNIT_ASSERT(plan.personalised());
        CPPUNIT_ASSERT_EQUAL(std::string("name\n"), placeholders(plan.template_text()).at(0) + "\n");
        std::string out = render(plan, {"name"}, {"a\r\nb"}, "", false);
        CPPUNIT_ASSERT(out.find("filename=\"a  b.json\"\r\n\r\n{\"n\": \"a  b\"}\r\n--b--") != std::string::npos);
        CPPUNIT_ASSERT(!RenderPlan("Subject: x\n\nno placeholders\n").personalised());
    }

    void renaming() {
        std::string msg = two_part("Hi {{email}}");
        std::string renamed = rename_placeholder_mime(msg, "link", "address");
        RenderPlan plan(renamed);
        auto names = placeholders(plan.template_text());
        CPPUNIT_ASSERT(std::find(names.begin(), names.end(), "link") == names.end());
        std::string out = render(plan, {"name"}, {"Ann"}, "ann@shop.test", false);
        CPPUNIT_ASSERT(base64_decode(body_after(out, "text/html")).find("href=\"ann@shop.test\"") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(msg, rename_placeholder_mime(msg, "nothing", "address"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MimeTest);
