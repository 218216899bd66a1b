// test_smtp_tls: the SMTP client's STARTTLS levels (may, encrypt, verify) and AUTH over TLS,
// against the pysink fixture and scripted servers on loopback.
#include "tests/unit/smtp_fixtures.hpp"

using namespace smtp_fixtures;

class SmtpTlsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SmtpTlsTest);
    CPPUNIT_TEST(tls_may_starttls_refused);
    CPPUNIT_TEST(tls_may);
    CPPUNIT_TEST(tls_may_falls_back_to_clear);
    CPPUNIT_TEST(tls_encrypt_not_offered);
    CPPUNIT_TEST(tls_verify);
    CPPUNIT_TEST(auth_over_tls);
    CPPUNIT_TEST_SUITE_END();

public:
    void tls_may_starttls_refused() {
        // Level may: a refused STARTTLS means clear text on the same connection.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-STARTTLS\r\n250 8BITMIME");
            for (std::string l = c.line(); !l.empty(); l = c.line()) {
                if (l == "STARTTLS") c.say("454 4.7.0 TLS not available due to temporary reason");
                else if (l == "DATA") {
                    c.say("354 go");
                    c.message();
                    c.say("250 2.0.0 queued");
                } else if (l == "QUIT") {
                    c.say("221 bye");
                    return;
                } else {
                    c.say("250 ok");
                }
            }
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(TlsLevel::may), {message({"a@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_summary.empty());
        CPPUNIT_ASSERT(contains(o.tls_fallback, "STARTTLS refused: 454 4.7.0"));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL(1, server.connections());
        // Level encrypt: the same refusal is a failure, and nothing is sent.
        Outcome e = deliver(server.ep(), "scripted.test", options(TlsLevel::encrypt), {message({"b@x.test"})});
        CPPUNIT_ASSERT(!e.opened);
        CPPUNIT_ASSERT(e.stage == Stage::starttls);
        CPPUNIT_ASSERT_EQUAL(454, e.error.code);
        for (const auto& l : server.lines()) CPPUNIT_ASSERT(l != "RCPT TO:<b@x.test>");
    }

    void tls_may() {
        const Certs& certs = Certs::get();
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key"));
        Outcome o = deliver(sink.ep(), "mx.tls.test", options(TlsLevel::may), {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT_MESSAGE(o.tls_summary, contains(o.tls_summary, "TLSv1."));
        CPPUNIT_ASSERT(contains(o.tls_summary, " with cipher "));
        CPPUNIT_ASSERT(contains(o.tls_summary, " bits)"));
        CPPUNIT_ASSERT(!o.tls_verified);  // the test CA is not in the system store
        CPPUNIT_ASSERT(contains(o.tls_log_line, "Untrusted TLS connection established to mx.tls.test["));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT(contains(sink.accepted(), "\"tls\": true"));
        // Self-signed: still encrypted at level may.
        PySink self("tls:" + certs.file("self.crt") + ":" + certs.file("self.key"));
        Outcome s = deliver(self.ep(), "mx.tls.test", options(TlsLevel::may), {message({"ann@x.test"})});
        CPPUNIT_ASSERT(s.opened && !s.tls_summary.empty());
        CPPUNIT_ASSERT_EQUAL(250, s.results.at(0).data.code);
    }

    void tls_may_falls_back_to_clear() {
        // First connection: STARTTLS accepted, then no TLS at all; the second
        // connection must not try again and delivers in clear.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-PIPELINING\r\n250 STARTTLS");
            if (c.index == 0) {
                c.line();
                c.say("220 2.0.0 go ahead");
                c.raw("this is not a TLS server hello\r\n");
                c.line();
                return;
            }
            accept_pipelined(c);
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(TlsLevel::may), {message({"a@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_summary.empty());
        CPPUNIT_ASSERT_MESSAGE(o.tls_fallback, contains(o.tls_fallback, "continued in clear text"));
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL(2, server.connections());
    }

    void tls_encrypt_not_offered() {
        SmtpSink sink;
        Outcome o = deliver(sink.ep(), "sink.test", options(TlsLevel::encrypt), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.error.temporary() && o.error.synthetic);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.4"), o.error.enhanced);
        CPPUNIT_ASSERT(contains(o.error.text, "TLS is required, but was not offered by host sink.test["));
        sink.child->stop();
        CPPUNIT_ASSERT(!contains(sink.dump(), "X-Mail-Args"));
    }

    void tls_verify() {
        const Certs& certs = Certs::get();
        Options verify = options(TlsLevel::verify);
        verify.tls_ca_file = certs.file("ca.crt");
        verify.tls_context = std::make_shared<TlsContext>(verify.tls_ca_file);
        verify.tls_server_name = "mx.tls.test";
        {
            PySink self("tls:" + certs.file("self.crt") + ":" + certs.file("self.key"));
            Outcome o = deliver(self.ep(), "mx.tls.test", verify, {message({"ann@x.test"})});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT(o.stage == Stage::tls_handshake);
            CPPUNIT_ASSERT_EQUAL(std::string("4.7.5"), o.error.enhanced);
            CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "Server certificate not verified"));
            CPPUNIT_ASSERT(!contains(self.accepted(), "ann@x.test"));
        }
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key"));
        Outcome o = deliver(sink.ep(), "mx.tls.test", verify, {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.tls_verified);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_EQUAL("Verified TLS connection established to mx.tls.test[" + sink.ip + "]:" +
                                 std::to_string(sink.port) + ": " + o.tls_summary,
                             o.tls_log_line);
        CPPUNIT_ASSERT(!o.tls_resumed);  // nothing cached yet: a full handshake
        CPPUNIT_ASSERT(verify.tls_context->cached_sessions() >= 1);
        // A second connection resumes the session cached under the name
        // (SSL_session_reused), and a resumed session counts as verified.
        Outcome again = deliver(sink.ep(), "mx.tls.test", verify, {message({"bob@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(again.error.str(), again.opened);
        CPPUNIT_ASSERT(again.tls_resumed);
        CPPUNIT_ASSERT(again.tls_verified);
        // And so does the one after it: a resumed session leaves a usable one behind.
        Outcome third = deliver(sink.ep(), "mx.tls.test", verify, {message({"dee@x.test"})});
        CPPUNIT_ASSERT(third.tls_resumed && third.tls_verified);
        // The right CA, the wrong name.
        Options wrong = verify;
        wrong.tls_server_name = "other.tls.test";
        Outcome w = deliver(sink.ep(), "other.tls.test", wrong, {message({"cy@x.test"})});
        CPPUNIT_ASSERT(!w.opened);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.5"), w.error.enhanced);
        std::string accepted = sink.accepted();
        CPPUNIT_ASSERT(contains(accepted, "ann@x.test") && contains(accepted, "bob@x.test") &&
                       contains(accepted, "dee@x.test"));
        CPPUNIT_ASSERT(!contains(accepted, "cy@x.test"));
    }

    void auth_over_tls() {
        const Certs& certs = Certs::get();
        PySink sink("tls:" + certs.file("mx.crt") + ":" + certs.file("mx.key") + ",auth:relayuser:s3cret");
        Options good = options(TlsLevel::encrypt);
        good.auth_user = "relayuser";
        good.auth_password = "s3cret";
        Outcome o = deliver(sink.ep(), "mx.tls.test", good, {message({"ann@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT(contains(sink.accepted(), "\"auth\": \"relayuser\""));
        Options bad = good;
        bad.auth_password = "wrong";
        Outcome b = deliver(sink.ep(), "mx.tls.test", bad, {message({"bob@x.test"})});
        CPPUNIT_ASSERT(!b.opened);
        CPPUNIT_ASSERT(b.stage == Stage::auth);
        CPPUNIT_ASSERT(b.error.temporary());  // a wrong password defers, never bounces
        CPPUNIT_ASSERT(contains(b.error.text, "SASL authentication failed"));
        // Credentials without TLS are never sent.
        Options clear = good;
        clear.tls = TlsLevel::none;
        Outcome c = deliver(sink.ep(), "mx.tls.test", clear, {message({"cy@x.test"})});
        CPPUNIT_ASSERT(!c.opened);
        CPPUNIT_ASSERT(c.stage == Stage::auth);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SmtpTlsTest);
