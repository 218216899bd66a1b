// test_smtp_protocol: every reply checked against its SMTP step (only RCPT, DATA's 354 and the
// reply after the dot decide a recipient), loop detection, and the timeouts taken from the table.
#include <cppunit/extensions/HelperMacros.h>

#include "libshared/config_file.hpp"
#include "qrunner/settings.hpp"
#include "tests/unit/smtp_fixtures.hpp"

using namespace smtp_fixtures;

// Every reply is checked against its step (stage.cpp's table): only the RCPT
// reply, DATA's 354 and the reply after the dot decide a recipient; any other
// code out of place is a protocol error (451 4.5.0) that drops the connection.
class SmtpProtocolTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SmtpProtocolTest);
    CPPUNIT_TEST(expected_replies_table);
    CPPUNIT_TEST(greeting_out_of_protocol);
    CPPUNIT_TEST(greeting_refused);
    CPPUNIT_TEST(ehlo_out_of_protocol);
    CPPUNIT_TEST(ehlo_and_helo_refused);
    CPPUNIT_TEST(starttls_250_under_encrypt);
    CPPUNIT_TEST(auth_replies);
    CPPUNIT_TEST(mail_out_of_protocol);
    CPPUNIT_TEST(rcpt_replies);
    CPPUNIT_TEST(data_250_sends_nothing);
    CPPUNIT_TEST(data_refused);
    CPPUNIT_TEST(end_of_data_out_of_protocol);
    CPPUNIT_TEST(rset_out_of_protocol);
    CPPUNIT_TEST(quit_any_reply);
    CPPUNIT_TEST(connect_failures_by_kind);
    CPPUNIT_TEST(loop_at_greeting);
    CPPUNIT_TEST(loop_at_ehlo);
    CPPUNIT_TEST(no_loop);
    CPPUNIT_TEST(timeouts_from_the_parameter_table);
    CPPUNIT_TEST_SUITE_END();

    static void assert_protocol_error(const Reply& r, const std::string& said) {
        CPPUNIT_ASSERT_EQUAL_MESSAGE(r.str(), 451, r.code);
        CPPUNIT_ASSERT_EQUAL(std::string("4.5.0"), r.enhanced);
        CPPUNIT_ASSERT(r.synthetic);
        CPPUNIT_ASSERT_MESSAGE(r.text, contains(r.text, "protocol error: host scripted.test["));
        CPPUNIT_ASSERT_MESSAGE(r.text, contains(r.text, "said \"" + said + "\""));
    }

    static bool received(const ScriptedSmtp& server, const std::string& line) {
        for (const auto& l : server.lines())
            if (l == line) return true;
        return false;
    }

    // A refused or failed open: no session, what went wrong and where.
    static Outcome open_against(const std::vector<std::string>& replies, Options opts = options()) {
        ScriptedSmtp server(replies);
        return deliver(server.ep(), "scripted.test", std::move(opts), {message({"a@x.test"})});
    }

public:
    void expected_replies_table() {
        CPPUNIT_ASSERT(expected_reply(Stage::greeting, 220) && out_of_protocol(Stage::greeting, 250));
        CPPUNIT_ASSERT(out_of_protocol(Stage::greeting, 221) && !out_of_protocol(Stage::greeting, 554));
        CPPUNIT_ASSERT(expected_reply(Stage::helo, 250) && out_of_protocol(Stage::helo, 220));
        CPPUNIT_ASSERT(expected_reply(Stage::starttls, 220) && out_of_protocol(Stage::starttls, 250));
        CPPUNIT_ASSERT(expected_reply(Stage::auth, 235) && expected_reply(Stage::auth, 334));
        CPPUNIT_ASSERT(out_of_protocol(Stage::auth, 250));
        CPPUNIT_ASSERT(expected_reply(Stage::mail, 250) && out_of_protocol(Stage::mail, 251));
        CPPUNIT_ASSERT(expected_reply(Stage::rcpt, 250) && expected_reply(Stage::rcpt, 251));
        CPPUNIT_ASSERT(out_of_protocol(Stage::rcpt, 252) && out_of_protocol(Stage::rcpt, 354));
        CPPUNIT_ASSERT(expected_reply(Stage::data, 354) && out_of_protocol(Stage::data, 250));
        CPPUNIT_ASSERT(!out_of_protocol(Stage::data, 451) && !out_of_protocol(Stage::data, 554));
        CPPUNIT_ASSERT(expected_reply(Stage::data_done, 250) && out_of_protocol(Stage::data_done, 354));
        CPPUNIT_ASSERT(expected_reply(Stage::rset, 250) && out_of_protocol(Stage::rset, 220));
        CPPUNIT_ASSERT(expected_reply(Stage::quit, 500) && !out_of_protocol(Stage::quit, 354));
        CPPUNIT_ASSERT_EQUAL(std::string("250 or 251"), expected_replies(Stage::rcpt));
    }

    void greeting_out_of_protocol() {
        for (std::string greeting : {"221 2.0.0 bye", "250 scripted.test hello", "354 go", "199 early"}) {
            Outcome o = open_against({"greeting=" + greeting});
            CPPUNIT_ASSERT_MESSAGE(greeting, !o.opened);
            CPPUNIT_ASSERT(o.failure == ConnectFailure::protocol);
            CPPUNIT_ASSERT(o.stage == Stage::greeting);
            if (greeting != "199 early") assert_protocol_error(o.error, greeting);  // 1xx: malformed
            else CPPUNIT_ASSERT_EQUAL(std::string("4.5.0"), o.error.enhanced);
        }
    }

    void greeting_refused() {
        // The server's own no: delivery tries the next MX with it (RFC 5321 3.1, 5.1).
        for (std::string greeting : {"554 5.7.1 no service for you", "450 busy", "421 4.3.2 closing"}) {
            Outcome o = open_against({"greeting=" + greeting});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT_MESSAGE(std::string(to_string(o.failure)), o.failure == ConnectFailure::refused);
            CPPUNIT_ASSERT(o.stage == Stage::greeting);
            CPPUNIT_ASSERT_EQUAL(greeting, o.error.str());
            CPPUNIT_ASSERT(!o.error.synthetic);
        }
    }

    void ehlo_out_of_protocol() {
        ScriptedSmtp server({"EHLO=220 scripted.test ESMTP"});
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.failure == ConnectFailure::protocol);
        CPPUNIT_ASSERT(o.stage == Stage::helo);
        assert_protocol_error(o.error, "220 scripted.test ESMTP");
        CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "EHLO handshake (expected 250)"));
        CPPUNIT_ASSERT(!received(server, "HELO client.mxlane.test"));  // no fallback either
        // HELO after a refused EHLO is checked the same way.
        Outcome h = open_against({"EHLO=502 5.5.1 no", "HELO=354 what"});
        CPPUNIT_ASSERT(h.failure == ConnectFailure::protocol && h.stage == Stage::helo);
        assert_protocol_error(h.error, "354 what");
    }

    void ehlo_and_helo_refused() {
        Outcome o = open_against({"EHLO=550 5.7.1 not you", "HELO=550 5.7.1 still not you"});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.failure == ConnectFailure::refused);
        CPPUNIT_ASSERT(o.stage == Stage::helo);
        CPPUNIT_ASSERT_EQUAL(std::string("550 5.7.1 still not you"), o.error.str());
        Outcome t = open_against({"EHLO=451 4.3.0 later"});
        CPPUNIT_ASSERT(t.failure == ConnectFailure::refused && t.stage == Stage::helo);
        CPPUNIT_ASSERT_EQUAL(451, t.error.code);
    }

    void starttls_250_under_encrypt() {
        // A 250 to STARTTLS is no promise of TLS: nothing may go out in clear,
        // and nothing is decided by it.
        for (TlsLevel level : {TlsLevel::encrypt, TlsLevel::may}) {
            ScriptedSmtp server({"EHLO=250-scripted.test|250 STARTTLS", "STARTTLS=250 2.0.0 sure"});
            Outcome o = deliver(server.ep(), "scripted.test", options(level), {message({"a@x.test"}, "SECRET\n")});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT_MESSAGE(std::string(to_string(o.failure)), o.failure == ConnectFailure::protocol);
            CPPUNIT_ASSERT(o.stage == Stage::starttls);
            assert_protocol_error(o.error, "250 2.0.0 sure");
            for (const auto& l : server.lines()) CPPUNIT_ASSERT(l.rfind("MAIL", 0) != 0 && l != "SECRET");
        }
    }

    void auth_replies() {
        // AUTH over TLS (RFC 4954 4): 235 ends it, a 535 is a failed login, a 250 is out of protocol.
        const Certs& certs = Certs::get();
        std::string tls = certs.file("mx.crt") + ":" + certs.file("mx.key");
        std::vector<std::string> replies{"EHLO=250-scripted.test|250-STARTTLS|250 AUTH PLAIN LOGIN",
                                         "STARTTLS=220 2.0.0 go ahead"};
        Options opts = options(TlsLevel::encrypt);
        opts.auth_user = "user";
        opts.auth_password = "secret";
        auto with = [&](const std::string& auth) {
            std::vector<std::string> r = replies;
            r.push_back("AUTH=" + auth);
            ScriptedSmtp server(r, tls);
            Outcome o = deliver(server.ep(), "scripted.test", opts, {message({"a@x.test"})});
            CPPUNIT_ASSERT_MESSAGE(server.received(), contains(server.received(), "AUTH PLAIN "));
            return o;
        };
        Outcome odd = with("250 2.0.0 whatever");
        CPPUNIT_ASSERT(!odd.opened);
        CPPUNIT_ASSERT_MESSAGE(std::string(to_string(odd.failure)), odd.failure == ConnectFailure::protocol);
        CPPUNIT_ASSERT(odd.stage == Stage::auth);
        assert_protocol_error(odd.error, "250 2.0.0 whatever");
        Outcome wrong = with("535 5.7.8 bad credentials");
        CPPUNIT_ASSERT(wrong.failure == ConnectFailure::auth && wrong.stage == Stage::auth);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.8"), wrong.error.enhanced);
        Outcome good = with("235 2.7.0 welcome");
        CPPUNIT_ASSERT_MESSAGE(good.error.str(), good.opened);
        CPPUNIT_ASSERT(!good.tls_summary.empty());
        CPPUNIT_ASSERT_EQUAL(250, good.results.at(0).data.code);
    }

    void mail_out_of_protocol() {
        for (bool pipelining : {false, true}) {
            std::string ehlo = pipelining ? "EHLO=250-scripted.test|250 PIPELINING" : "EHLO=250 scripted.test";
            ScriptedSmtp server({ehlo, "MAIL=354 go"});
            Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test", "b@x.test"}, "SECRET\n")});
            CPPUNIT_ASSERT(o.opened);
            const auto& r = o.results.at(0);
            assert_protocol_error(r.mail, "354 go");
            for (const auto& rc : r.rcpts) CPPUNIT_ASSERT_EQUAL(std::string("4.5.0"), rc.enhanced);
            CPPUNIT_ASSERT(r.connection_lost && !o.usable_after);
            CPPUNIT_ASSERT(!received(server, "SECRET"));
        }
    }

    void rcpt_replies() {
        // 251 (will forward) accepts; 252 is no answer to RCPT.
        {
            ScriptedSmtp server({"RCPT=251 2.1.5 will forward"});
            Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
            CPPUNIT_ASSERT_EQUAL(251, o.results.at(0).rcpts.at(0).code);
            CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        }
        ScriptedSmtp server({"RCPT=252 2.1.5 cannot verify"});
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"}, "SECRET\n")});
        const auto& r = o.results.at(0);
        assert_protocol_error(r.rcpts.at(0), "252 2.1.5 cannot verify");
        CPPUNIT_ASSERT(r.connection_lost && !o.usable_after);
        CPPUNIT_ASSERT(!received(server, "DATA") && !received(server, "SECRET"));
    }

    void data_250_sends_nothing() {
        // DATA answered 250 instead of 354: the recipients were accepted, but
        // no text went out, so nothing is delivered: the DATA reply decides
        // them, and it is a protocol error (temporary).
        for (bool pipelining : {false, true}) {
            std::string ehlo = pipelining ? "EHLO=250-scripted.test|250 PIPELINING" : "EHLO=250 scripted.test";
            ScriptedSmtp server({ehlo, "DATA=250 2.0.0 ok, thanks"});
            Outcome o = deliver(server.ep(), "scripted.test", options(),
                                {message({"a@x.test", "b@x.test"}, "SECRET\n"), message({"c@x.test"})});
            CPPUNIT_ASSERT(o.opened);
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
            assert_protocol_error(r.data, "250 2.0.0 ok, thanks");
            CPPUNIT_ASSERT(r.data_stage == Stage::data);
            CPPUNIT_ASSERT_MESSAGE(r.data.text, contains(r.data.text, "while sending DATA (expected 354)"));
            CPPUNIT_ASSERT(r.connection_lost && !o.usable_after);
            // The connection is dropped: the next message is not sent on it.
            CPPUNIT_ASSERT(o.results.at(1).connection_lost && o.results.at(1).rcpts.at(0).temporary());
            CPPUNIT_ASSERT(!received(server, "SECRET"));
            CPPUNIT_ASSERT(!received(server, "QUIT"));
        }
    }

    void data_refused() {
        ScriptedSmtp server({"DATA=554 5.7.1 no thanks"});
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"}, "SECRET\n")});
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(std::string("554 5.7.1 no thanks"), r.data.str());
        CPPUNIT_ASSERT(r.data_stage == Stage::data && !r.data.synthetic);
        CPPUNIT_ASSERT(!r.connection_lost && o.usable_after);
        CPPUNIT_ASSERT(!received(server, "SECRET"));
    }

    void end_of_data_out_of_protocol() {
        for (std::string after_dot : {"354 more please", "220 hello again", "251 2.0.0 ok"}) {
            ScriptedSmtp server({".=" + after_dot});
            Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
            assert_protocol_error(r.data, after_dot);
            CPPUNIT_ASSERT(r.data_stage == Stage::data_done);
            CPPUNIT_ASSERT(r.connection_lost && !o.usable_after);
        }
    }

    void rset_out_of_protocol() {
        // A probe leaves the transaction open; the RSET before the next one
        // gets 220: the next transaction fails with the protocol error.
        ScriptedSmtp server({"RSET=220 what"});
        Message probe = message({"a@x.test"});
        probe.env.stop_before_data = true;
        Outcome o = deliver(server.ep(), "scripted.test", options(), {probe, message({"b@x.test"}, "SECRET\n")});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).rcpts.at(0).code);
        const auto& r = o.results.at(1);
        assert_protocol_error(r.mail, "220 what");
        assert_protocol_error(r.rcpts.at(0), "220 what");
        CPPUNIT_ASSERT(r.connection_lost && !o.usable_after);
        CPPUNIT_ASSERT(received(server, "RSET") && !received(server, "SECRET"));
    }

    void quit_any_reply() {
        ScriptedSmtp server({"QUIT=500 5.5.1 what is QUIT"});
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT(received(server, "QUIT"));
    }

    void connect_failures_by_kind() {
        std::string ip = next_ip();
        Outcome refused = deliver(endpoint(ip, free_port(ip)), "mx.refused.test", options(), {});
        CPPUNIT_ASSERT(refused.failure == ConnectFailure::connect && refused.stage == Stage::connect);
        // Garbage in reply to EHLO: malformed, a protocol error.
        PySink garbage("hostile-garbage");
        Outcome g = deliver(garbage.ep(), "elsewhere.test", options(), {});
        CPPUNIT_ASSERT_MESSAGE(std::string(to_string(g.failure)), g.failure == ConnectFailure::protocol);
        // A greeting that never comes: lost (timed out), not refused.
        ScriptedServer silent([](ScriptedServer::Conn& c) { c.line(); });
        Options opts = options();
        opts.timeouts.helo = seconds(1);
        Outcome s = deliver(silent.ep(), "scripted.test", opts, {});
        CPPUNIT_ASSERT_MESSAGE(std::string(to_string(s.failure)), s.failure == ConnectFailure::lost);
        CPPUNIT_ASSERT(s.stage == Stage::greeting && s.error.temporary());
        CPPUNIT_ASSERT_EQUAL(std::string("4.4.2"), s.error.enhanced);
        // Encryption required and not offered.
        Outcome t = open_against({}, options(TlsLevel::encrypt));
        CPPUNIT_ASSERT(t.failure == ConnectFailure::tls && t.stage == Stage::starttls);
        CPPUNIT_ASSERT_EQUAL(std::string("4.7.4"), t.error.enhanced);
    }

    static Options looping(const std::string& myhostname) {
        Options opts = options();
        opts.loop_name = myhostname;
        opts.next_hop = "x.test";
        return opts;
    }

    void loop_at_greeting() {
        ScriptedSmtp server({"greeting=220 MX.Self.Test ESMTP here"});
        Outcome o = deliver(server.ep(), "scripted.test", looping("mx.self.test"), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.failure == ConnectFailure::loop);
        CPPUNIT_ASSERT(o.stage == Stage::greeting);
        CPPUNIT_ASSERT_EQUAL(554, o.error.code);
        CPPUNIT_ASSERT_EQUAL(std::string("5.4.6"), o.error.enhanced);
        CPPUNIT_ASSERT(o.error.permanent() && o.error.synthetic);
        CPPUNIT_ASSERT_EQUAL(std::string("mail for x.test loops back to myself"), o.error.text);
        auto lines = server.lines();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), lines.size());  // QUIT, and not even EHLO
        CPPUNIT_ASSERT_EQUAL(std::string("QUIT"), lines.at(0));
        // An enhanced code in front of the name is not the name.
        ScriptedSmtp coded({"greeting=220 2.0.0 mx.self.test ready"});
        Outcome c = deliver(coded.ep(), "scripted.test", looping("mx.self.test"), {});
        CPPUNIT_ASSERT(c.failure == ConnectFailure::loop);
    }

    void loop_at_ehlo() {
        ScriptedSmtp server({"EHLO=250-mx.self.test hello|250 PIPELINING"});
        Outcome o = deliver(server.ep(), "scripted.test", looping("MX.SELF.TEST"), {message({"a@x.test"})});
        CPPUNIT_ASSERT(o.failure == ConnectFailure::loop);
        CPPUNIT_ASSERT(o.stage == Stage::helo);
        CPPUNIT_ASSERT_EQUAL(std::string("554 5.4.6 mail for x.test loops back to myself"), o.error.str());
        CPPUNIT_ASSERT(!received(server, "MAIL FROM:<sender@mxlane.test>"));
        // After a refused EHLO, the HELO reply names the server.
        Outcome h = open_against({"EHLO=500 no", "HELO=250 mx.self.test"}, looping("mx.self.test"));
        CPPUNIT_ASSERT(h.failure == ConnectFailure::loop && h.stage == Stage::helo);
        // next_hop empty: the host's name.
        Options plain = looping("mx.self.test");
        plain.next_hop.clear();
        Outcome p = open_against({"EHLO=250 mx.self.test"}, plain);
        CPPUNIT_ASSERT_EQUAL(std::string("mail for scripted.test loops back to myself"), p.error.text);
    }

    void no_loop() {
        // Another name (a prefix of ours is another name), or no loop_name: a session.
        ScriptedSmtp server({"greeting=220 mx.self.test.example ESMTP", "EHLO=250-mx.self.tes|250 8BITMIME"});
        Outcome o = deliver(server.ep(), "scripted.test", looping("mx.self.test"), {message({"a@x.test"})});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT_EQUAL(std::string("mx.self.test.example"), o.greeting_name);
        CPPUNIT_ASSERT_EQUAL(std::string("mx.self.tes"), o.ehlo_name);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        ScriptedSmtp self({"greeting=220 mx.self.test ESMTP"});
        Outcome off = deliver(self.ep(), "scripted.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(off.opened);
        CPPUNIT_ASSERT_EQUAL(std::string("mx.self.test"), off.greeting_name);
        CPPUNIT_ASSERT_EQUAL(std::string("scripted.test"), off.ehlo_name);
    }

    void timeouts_from_the_parameter_table() {
        // The table's defaults and a configured value, each as it is: no cap anywhere.
        auto defaults = qrunner::Settings::load(Config::parse("", "t.conf"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(2), std::int64_t(defaults->smtp.timeouts.quit.count()));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(20), std::int64_t(defaults->smtp.timeouts.rset.count()));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(600), std::int64_t(defaults->smtp.timeouts.data_done.count()));
        auto set = qrunner::Settings::load(Config::parse("smtp_quit_timeout = 30s\nsmtp_rset_timeout = 7s\n", "t.conf"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(30), std::int64_t(set->smtp.timeouts.quit.count()));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7), std::int64_t(set->smtp.timeouts.rset.count()));
        // And the session waits that long for a QUIT reply that does not come.
        ScriptedSmtp silent({"QUIT=" + std::string()});
        Options opts = options();
        opts.timeouts.quit = seconds(3);
        Outcome o = deliver(silent.ep(), "scripted.test", opts, {message({"a@x.test"})});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT_MESSAGE(std::to_string(o.seconds), o.seconds >= 2.9 && o.seconds < 6);
    }
};


CPPUNIT_TEST_SUITE_REGISTRATION(SmtpProtocolTest);
