// test_dkim: relaxed canonicalisation, header selection and over-signing, the key table, and signatures checked by OpenDKIM.
#include <cppunit/extensions/HelperMacros.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "qrunner/dkim/canon.hpp"
#include "qrunner/dkim/key_table.hpp"
#include "qrunner/dkim/signer.hpp"
#include "qrunner/smtp/message_data.hpp"
#include "tests/unit/opendkim_oracle.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;
using namespace mxlane::dkim;

namespace {

std::string pem_of(EVP_PKEY* k) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    EVP_PKEY_free(k);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string rsa_pem(unsigned bits) { return pem_of(EVP_RSA_gen(bits)); }
std::string ed25519_pem() { return pem_of(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

Key make_key(const std::string& domain, const std::string& selector, const std::string& pem) {
    return parse_key(KeyLine{domain, selector, "/keys/" + selector + ".pem", 1}, pem);
}

std::pair<std::string, std::string> record(const Key& k) {
    return {k.selector + "._domainkey." + k.domain,
            std::string("v=DKIM1; k=") + (k.algorithm == Algorithm::rsa ? "rsa" : "ed25519") + "; p=" + k.public_key};
}

// The signed message as a receiver sees it: signature fields, then the message with the dot-stuffing undone.
std::string received(const std::string& sigs_and_wire) {
    std::string out;
    std::size_t start = 0;
    while (start < sigs_and_wire.size()) {
        std::size_t end = sigs_and_wire.find("\r\n", start);
        std::string line = sigs_and_wire.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!line.empty() && line[0] == '.') line.erase(0, 1);
        out += line + "\r\n";
        start = end == std::string::npos ? sigs_and_wire.size() : end + 2;
    }
    return out;
}

}  // namespace

class DkimTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DkimTest);
    CPPUNIT_TEST(relaxed_header_fields);
    CPPUNIT_TEST(relaxed_bodies);
    CPPUNIT_TEST(split_undoes_dot_stuffing);
    CPPUNIT_TEST(header_selection_bottom_up);
    CPPUNIT_TEST(header_list_oversigns_from);
    CPPUNIT_TEST(signed_header_names_from_first);
    CPPUNIT_TEST(parent_domain_lookup);
    CPPUNIT_TEST(key_table_lines);
    CPPUNIT_TEST(key_errors);
    CPPUNIT_TEST(txt_record_strings);
    CPPUNIT_TEST(opendkim_verifies_edge_cases);
    CPPUNIT_TEST(added_from_breaks_signature);
    CPPUNIT_TEST(changed_body_breaks_signature);
    CPPUNIT_TEST(no_key_leaves_text_unchanged);
    CPPUNIT_TEST_SUITE_END();

    static const Key& rsa() {
        static const Key k = make_key("shop.test", "rsa1", rsa_pem(2048));
        return k;
    }
    static const Key& ed() {
        static const Key k = make_key("shop.test", "ed1", ed25519_pem());
        return k;
    }

public:
    void relaxed_header_fields() {
        CPPUNIT_ASSERT_EQUAL(std::string("subject:Hello World\r\n"), relaxed_header("Subject:  Hello \t  World  "));
        CPPUNIT_ASSERT_EQUAL(std::string("subject:one two\r\n"), relaxed_header("SUBJECT: one\r\n  two \t"));
        CPPUNIT_ASSERT_EQUAL(std::string("subject:x\r\n"), relaxed_header("Subject \t: x"));
        CPPUNIT_ASSERT_EQUAL(std::string("x-empty:\r\n"), relaxed_header("X-Empty:   "));
        // VT and FF at a value's ends go as receivers (OpenDKIM, dkimpy) strip them; inside they stay.
        CPPUNIT_ASSERT_EQUAL(std::string("to:es\x0b x\r\n"), relaxed_header("To: \x0c es\x0b x \x0c"));
        CPPUNIT_ASSERT_EQUAL(std::string("subject:Gr\xc3\xbc\xc3\x9f" "e\r\n"), relaxed_header("Subject: Gr\xc3\xbc\xc3\x9f" "e"));
    }

    void relaxed_bodies() {
        CPPUNIT_ASSERT_EQUAL(std::string(""), relaxed_body(""));
        CPPUNIT_ASSERT_EQUAL(std::string(""), relaxed_body("\r\n\r\n \t\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("abc\r\n"), relaxed_body("abc"));  // no final CRLF
        CPPUNIT_ASSERT_EQUAL(std::string("a b\r\n"), relaxed_body("a \t b  \t\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string(" lead\r\n"), relaxed_body("\t  lead\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n\r\nb\r\n"), relaxed_body("a\r\n\r\nb\r\n\r\n\r\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("\r\n\r\nx\r\n"), relaxed_body("\r\n \r\nx"));
        CPPUNIT_ASSERT_EQUAL(std::string("K\xc3\xb6ln\r\n"), relaxed_body("K\xc3\xb6ln  \r\n"));
    }

    void split_undoes_dot_stuffing() {
        auto p = split_wire(smtp::to_wire("From: a@shop.test\nX-Fold: one\n two\n\n.dot\n..two\nend").text);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), p.fields.size());
        CPPUNIT_ASSERT_EQUAL(std::string("X-Fold: one\r\n two"), p.fields[1]);
        CPPUNIT_ASSERT_EQUAL(std::string(".dot\r\n..two\r\nend\r\n"), p.body);
        auto only_header = split_wire("Subject: x\r\n");
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), only_header.fields.size());
        CPPUNIT_ASSERT_EQUAL(std::string(""), only_header.body);
    }

    void header_selection_bottom_up() {
        std::vector<std::string> fields = {"To: first", "Subject: s", "To: second"};
        // RFC 6376 5.4.2: the last instance first, then the one above it.
        CPPUNIT_ASSERT_EQUAL(std::string("to:second\r\nto:first\r\nsubject:s\r\n"),
                             signed_header_data(fields, {"to", "To", "subject"}));
        // A name with no instance left adds nothing.
        CPPUNIT_ASSERT_EQUAL(std::string("subject:s\r\n"), signed_header_data(fields, {"Subject", "Subject", "Cc"}));
    }

    void header_list_oversigns_from() {
        std::vector<std::string> fields = {"Received: x", "From: a@shop.test", "To: b", "Subject: s", "X-Other: y"};
        auto h = header_list(fields, {"From", "to", "Subject", "Date"}, {"From"});
        std::vector<std::string> want = {"From", "To", "Subject", "From"};
        CPPUNIT_ASSERT(want == h);
    }

    void signed_header_names_from_first() {
        auto names = signed_header_names({"To", "from", "Subject", "to", ""});
        std::vector<std::string> want = {"From", "To", "Subject"};
        CPPUNIT_ASSERT(want == names);
    }

    void parent_domain_lookup() {
        auto pem = ed25519_pem();
        auto t = KeyTable::from_keys({make_key("shop.test", "a", pem), make_key("news.shop.test", "b", pem),
                                      make_key("shop.test", "c", pem)});
        std::string d;
        auto* k = t.keys_for("shop.test", &d);
        CPPUNIT_ASSERT(k && k->size() == 2 && d == "shop.test");
        k = t.keys_for("mail.news.shop.test", &d);
        CPPUNIT_ASSERT(k && k->size() == 1 && d == "news.shop.test");
        k = t.keys_for("Deep.Sub.SHOP.test.", &d);
        CPPUNIT_ASSERT(k && d == "shop.test");
        CPPUNIT_ASSERT(!t.keys_for("othershop.test"));
        CPPUNIT_ASSERT(!t.keys_for("test"));
        CPPUNIT_ASSERT(!t.keys_for(""));
    }

    void key_table_lines() {
        auto lines = parse_key_table("# keys\n\nShop.Test. rsa1 /k/a.pem  # comment\nshop.test ed1\t/k/b.pem\n", "T");
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), lines.size());
        CPPUNIT_ASSERT_EQUAL(std::string("shop.test"), lines[0].domain);
        CPPUNIT_ASSERT_EQUAL(3, lines[0].line);
        CPPUNIT_ASSERT_EQUAL(std::string("/k/b.pem"), lines[1].file);
        auto error = [](const std::string& text) {
            try {
                parse_key_table(text, "T");
            } catch (const KeyError& e) {
                return std::string(e.what());
            }
            return std::string("no error");
        };
        CPPUNIT_ASSERT_EQUAL(std::string("T:1: expected DOMAIN SELECTOR KEYFILE, found 2 words"), error("shop.test sel\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("T:2: KEYFILE must be an absolute path: k.pem"), error("\nshop.test s k.pem"));
        CPPUNIT_ASSERT_EQUAL(std::string("T:1: not a domain name: shop..test"), error("shop..test s /k"));
        CPPUNIT_ASSERT_EQUAL(std::string("T:1: not a selector (a DNS label or labels): s;x"), error("shop.test s;x /k"));
        CPPUNIT_ASSERT_EQUAL(std::string("T:2: domain shop.test selector S appears twice"),
                             error("shop.test s /a\nSHOP.test S /b\n"));
    }

    void key_errors() {
        test::TempDir dir;
        auto error = [&](const std::string& text) {
            try {
                load_key(KeyLine{"shop.test", "s", dir.write("k.pem", text), 1});
            } catch (const KeyError& e) {
                return std::string(e.what());
            }
            return std::string("no error");
        };
        CPPUNIT_ASSERT(error("junk\n").find(dir.file("k.pem") + ": not a PEM private key") == 0);
        CPPUNIT_ASSERT(error(pem_of(EVP_EC_gen("P-256"))).find(": key of unknown type id-ecPublicKey") != std::string::npos);
        CPPUNIT_ASSERT(error(rsa_pem(768)).find(": RSA key of 768 bits; at least 1024") != std::string::npos);
        try {
            load_key(KeyLine{"shop.test", "s", dir.file("missing.pem"), 1});
            CPPUNIT_FAIL("a missing key loaded");
        } catch (const KeyError& e) {
            CPPUNIT_ASSERT_EQUAL(dir.file("missing.pem") + ": cannot read: No such file or directory", std::string(e.what()));
        }
        CPPUNIT_ASSERT_EQUAL(1024, make_key("shop.test", "s", rsa_pem(1024)).bits);
    }

    void txt_record_strings() {
        std::string txt = rsa().txt_record();
        CPPUNIT_ASSERT(txt.rfind("rsa1._domainkey.shop.test. IN TXT \"v=DKIM1; k=rsa; p=MIIB", 0) == 0);
        // RFC 1035: strings of at most 255; joined they give the record.
        std::string joined;
        for (std::size_t q = txt.find('"'); q != std::string::npos; q = txt.find('"', txt.find('"', q + 1) + 1)) {
            std::size_t end = txt.find('"', q + 1);
            CPPUNIT_ASSERT(end - q - 1 <= 255);
            joined += txt.substr(q + 1, end - q - 1);
        }
        CPPUNIT_ASSERT_EQUAL(record(rsa()).second, joined);
        CPPUNIT_ASSERT_EQUAL(std::size_t(44), ed().public_key.size());  // 32 bytes (RFC 8463 4)
    }

    void opendkim_verifies_edge_cases() {
        Signer s(KeyTable::from_keys({rsa(), ed()}), {"To", "Subject", "Date", "X-Folded"});
        test::OpendkimVerifier v({record(rsa()), record(ed())});
        const char* cases[] = {
            "From: News <news@shop.test>\nTo: a@x.test\nSubject: plain\n\nhello\n",
            "From: news@shop.test\nX-Folded: one\n   two  \t\n\tthree\nSubject:   spaced   out   \n\nbody\n",
            "From: news@shop.test\nSubject: trailing\n\nline one  \t\n  line two\t\n\n\n\n",
            "From: news@shop.test\nSubject: empty body\n\n",
            "From: news@shop.test\nSubject: no body at all\n",
            "From: news@shop.test\nSubject: no final line end\n\nlast line",
            "From: news@shop.test\nSubject: Gr\xc3\xbc\xc3\x9f" "e\n\nK\xc3\xb6ln \xe2\x82\xac\n",
            "From: news@shop.test\nSubject: dots\n\n.\n..\n.leading dot\n",
            "From: news@sub.shop.test\nTo: a@x.test\nTo: b@x.test\nSubject: two To\n\nx\n",
        };
        for (const char* c : cases) {
            auto sig = s.sign(smtp::to_wire(c).text, 1700000000);
            CPPUNIT_ASSERT_EQUAL(std::size_t(2), sig.keys.size());
            int found = 0;
            int ok = v.passed(received(sig.text), &found);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c, 2, found);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c + std::string("\n") + sig.text, 2, ok);
        }
    }

    void added_from_breaks_signature() {
        Signer s(KeyTable::from_keys({rsa()}), {"Subject"});
        test::OpendkimVerifier v({record(rsa())});
        auto sig = s.sign(smtp::to_wire("From: news@shop.test\nSubject: s\n\nbody\n").text);
        std::string flat;
        for (char c : sig.text)
            if (c != '\r' && c != '\n' && c != '\t' && c != ' ') flat += c;
        CPPUNIT_ASSERT_MESSAGE(sig.text, flat.find(";h=From:Subject:From;") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(1, v.passed(received(sig.text)));
        // A From: added below or above the signed one: the over-signed name now finds an instance.
        std::string added = received(sig.text);
        added.insert(added.find("\r\n\r\n") + 2, "From: evil@attacker.test\r\n");
        CPPUNIT_ASSERT_EQUAL(0, v.passed(added));
    }

    void changed_body_breaks_signature() {
        Signer s(KeyTable::from_keys({ed()}), {"Subject"});
        test::OpendkimVerifier v({record(ed())});
        std::string msg = received(s.sign(smtp::to_wire("From: news@shop.test\nSubject: s\n\nbody\n").text).text);
        CPPUNIT_ASSERT_EQUAL(1, v.passed(msg));
        msg.replace(msg.rfind("body"), 4, "bodY");
        CPPUNIT_ASSERT_EQUAL(0, v.passed(msg));
    }

    void no_key_leaves_text_unchanged() {
        Signer s(KeyTable::from_keys({rsa()}), {});
        std::string wire = smtp::to_wire("From: news@other.test\nSubject: s\n\nbody\n").text;
        auto sig = s.sign(wire);
        CPPUNIT_ASSERT(!sig.is_signed());
        CPPUNIT_ASSERT_EQUAL(wire, sig.text);
        CPPUNIT_ASSERT_EQUAL(std::string("other.test"), sig.from_domain);
        CPPUNIT_ASSERT_EQUAL(std::string(""), s.sign("Subject: no from\r\n\r\nx\r\n").from_domain);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DkimTest);
