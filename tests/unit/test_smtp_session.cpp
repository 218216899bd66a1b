// test_smtp_session: the SMTP client against real servers on loopback (smtp-sink, the pysink
// fixture, scripted and hostile servers): replies checked against each step, loop detection,
// and message_data. TLS and AUTH: test_smtp_tls.cpp.
#include "libshared/config_file.hpp"
#include "qrunner/settings.hpp"
#include "tests/unit/smtp_fixtures.hpp"

using namespace smtp_fixtures;

class MessageDataTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MessageDataTest);
    CPPUNIT_TEST(line_endings);
    CPPUNIT_TEST(dot_stuffing);
    CPPUNIT_TEST(eight_bit);
    CPPUNIT_TEST_SUITE_END();

public:
    void line_endings() {
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\nb\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\r\nb\r\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\nb").text);        // final CRLF ensured
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\nb\r\n"), to_wire("a\rb").text);        // bare CR ends a line
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n\r\nb\r\n"), to_wire("a\n\r\nb").text);
        CPPUNIT_ASSERT_EQUAL(std::string(""), to_wire("").text);
        CPPUNIT_ASSERT_EQUAL(std::string("\r\n"), to_wire("\n").text);
    }

    void dot_stuffing() {
        CPPUNIT_ASSERT_EQUAL(std::string("..\r\n"), to_wire(".").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n..\r\nb\r\n"), to_wire("a\n.\nb\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("...x\r\n"), to_wire("..x\r\n").text);
        CPPUNIT_ASSERT_EQUAL(std::string("a.b\r\n ..\r\n"), to_wire("a.b\n ..\n").text);  // not at line start
        // A "." after a bare CR starts a line too: no smuggled end of data.
        CPPUNIT_ASSERT_EQUAL(std::string("a\r\n..\r\nb\r\n"), to_wire("a\r.\rb").text);
        // The wire text never contains CRLF "." CRLF.
        std::string tricky = "x\n.\r\n.\r.\n\r\n.\n";
        CPPUNIT_ASSERT(!contains("\r\n" + to_wire(tricky).text, "\r\n.\r\n"));
    }

    void eight_bit() {
        CPPUNIT_ASSERT(!to_wire("plain ascii\n").eight_bit);
        CPPUNIT_ASSERT(to_wire("caf\xc3\xa9\n").eight_bit);
        CPPUNIT_ASSERT(has_eight_bit("\xff"));
        CPPUNIT_ASSERT(!has_eight_bit("~\x7f"));
    }
};

class SmtpSessionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SmtpSessionTest);
    CPPUNIT_TEST(smtp_sink_pipelined);
    CPPUNIT_TEST(smtp_sink_without_pipelining);
    CPPUNIT_TEST(smtp_sink_rejects);
    CPPUNIT_TEST(smtp_sink_421);
    CPPUNIT_TEST(helo_fallback);
    CPPUNIT_TEST(connection_refused);
    CPPUNIT_TEST(per_recipient_replies);
    CPPUNIT_TEST(rset_between_messages);
    CPPUNIT_TEST(address_probe);
    CPPUNIT_TEST(smtputf8_not_offered);
    CPPUNIT_TEST(no_recipient_but_354);
    CPPUNIT_TEST(mail_parameters);
    CPPUNIT_TEST(many_sessions_many_threads);
    CPPUNIT_TEST(hostile_overlong_line);
    CPPUNIT_TEST(hostile_garbage);
    CPPUNIT_TEST(hostile_mismatched_multiline);
    CPPUNIT_TEST(hostile_disconnect_mid_data);
    CPPUNIT_TEST(hostile_drip_greeting);
    CPPUNIT_TEST(hostile_drip_rcpt);
    CPPUNIT_TEST_SUITE_END();

public:
    void smtp_sink_pipelined() {
        SmtpSink sink;
        Outcome o = deliver(sink.ep(), "sink.test", options(),
                            {message({"a@x.test", "b@x.test"}, "Subject: one\n\n.leading dot\nbody\n"),
                             message({"c@x.test"}, "Subject: two\n\nsecond\n")});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(o.pipelining);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), o.results.size());
        for (const auto& r : o.results) {
            CPPUNIT_ASSERT_EQUAL(250, r.mail.code);
            for (const auto& rc : r.rcpts) CPPUNIT_ASSERT_EQUAL(250, rc.code);
            CPPUNIT_ASSERT_EQUAL(250, r.data.code);
            CPPUNIT_ASSERT(r.data_stage == Stage::data_done);
            CPPUNIT_ASSERT(!r.connection_lost);
        }
        CPPUNIT_ASSERT(o.usable_after);
        sink.child->stop();
        std::string dump = sink.dump();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), count(dump, "X-Mail-Args: <sender@mxlane.test>"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), count(dump, "X-Rcpt-Args: <"));
        CPPUNIT_ASSERT(contains(dump, "\n.leading dot\n"));  // the sink undid our dot-stuffing
        CPPUNIT_ASSERT(contains(dump, "X-Helo-Args: client.mxlane.test"));
    }

    void smtp_sink_without_pipelining() {
        SmtpSink sink({"-p"});
        Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        sink.child->stop();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), count(sink.dump(), "X-Rcpt-Args: <"));
    }

    void smtp_sink_rejects() {
        {
            SmtpSink sink({"-r", "RCPT", "-b", "451 4.3.0 try later"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT(r.rcpts.at(0).temporary() && r.rcpts.at(1).temporary());
            CPPUNIT_ASSERT_EQUAL(std::string("4.3.0"), r.rcpts.at(0).enhanced);
            CPPUNIT_ASSERT_EQUAL(0, r.data.code);  // nothing accepted, no DATA
            CPPUNIT_ASSERT(o.usable_after);
        }
        {
            SmtpSink sink({"-f", "MAIL", "-B", "550 5.7.1 go away"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(550, r.mail.code);
            CPPUNIT_ASSERT_EQUAL(std::string("550 5.7.1 go away"), r.rcpts.at(1).str());
            CPPUNIT_ASSERT_EQUAL(std::string("host sink.test[" + sink.ip + "] said: 550 5.7.1 go away (in reply to "
                                             "MAIL FROM command)"),
                                 describe_reply(r.mail, Stage::mail, "sink.test[" + sink.ip + "]"));
        }
        {
            SmtpSink sink({"-f", ".", "-B", "554 5.7.1 content rejected"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"})});
            const auto& r = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
            CPPUNIT_ASSERT_EQUAL(554, r.data.code);
            CPPUNIT_ASSERT(r.data_stage == Stage::data_done);
        }
    }

    void smtp_sink_421() {
        {
            SmtpSink sink({"-Q", "RCPT"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test", "b@x.test", "c@x.test"})});
            const auto& r = o.results.at(0);
            for (const auto& rc : r.rcpts) CPPUNIT_ASSERT_EQUAL(421, rc.code);
            CPPUNIT_ASSERT(!o.usable_after);
        }
        {
            SmtpSink sink({"-Q", "CONNECT"});
            Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"})});
            CPPUNIT_ASSERT(!o.opened);
            CPPUNIT_ASSERT_EQUAL(421, o.error.code);
            CPPUNIT_ASSERT(o.stage == Stage::greeting);
        }
    }

    void helo_fallback() {
        SmtpSink sink({"-e"});  // no ESMTP: EHLO gets 500
        Outcome o = deliver(sink.ep(), "sink.test", options(), {message({"a@x.test"}, "caf\xc3\xa9\n")});
        CPPUNIT_ASSERT_MESSAGE(o.error.str(), o.opened);
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        sink.child->stop();
        std::string dump = sink.dump();
        CPPUNIT_ASSERT(contains(dump, "X-Client-Proto: SMTP"));
        CPPUNIT_ASSERT(!contains(dump, "BODY=8BITMIME"));  // not offered, not sent
    }

    void connection_refused() {
        std::string ip = next_ip();
        unsigned short port = free_port(ip);
        Outcome o = deliver(endpoint(ip, port), "mx.refused.test", options(), {});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::connect);
        CPPUNIT_ASSERT(o.error.synthetic && o.error.temporary());
        CPPUNIT_ASSERT_EQUAL(std::string("4.4.1"), o.error.enhanced);
        CPPUNIT_ASSERT_EQUAL("connect to mx.refused.test[" + ip + "]:" + std::to_string(port) + ": Connection refused",
                             o.error.text);
    }

    void per_recipient_replies() {
        PySink sink;
        Outcome o = deliver(sink.ep(), "py.test", options(),
                            {message({"ann@x.test", "hard1@x.test", "soft1@x.test", "bob@x.test"})});
        CPPUNIT_ASSERT(o.opened && o.pipelining);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(550, r.rcpts.at(1).code);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), r.rcpts.at(1).enhanced);
        CPPUNIT_ASSERT_EQUAL(451, r.rcpts.at(2).code);
        CPPUNIT_ASSERT_EQUAL(std::string("4.3.0"), r.rcpts.at(2).dsn());
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(3).code);
        CPPUNIT_ASSERT_EQUAL(250, r.data.code);
        std::string accepted = sink.accepted();
        CPPUNIT_ASSERT(contains(accepted, "\"rcpt\": [\"ann@x.test\", \"bob@x.test\"]"));
        // datahard: accepted at RCPT, refused after the dot.
        Outcome d = deliver(sink.ep(), "py.test", options(), {message({"datahard@x.test"})});
        CPPUNIT_ASSERT_EQUAL(554, d.results.at(0).data.code);
        CPPUNIT_ASSERT(d.results.at(0).data_stage == Stage::data_done);
    }

    void rset_between_messages() {
        PySink sink("nopipelining");
        Outcome o = deliver(sink.ep(), "py.test", options(),
                            {message({"hard1@x.test"}), message({"ann@x.test"}), message({"bob@x.test"})});
        CPPUNIT_ASSERT(!o.pipelining);
        CPPUNIT_ASSERT_EQUAL(550, o.results.at(0).rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(1).data.code);
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(2).data.code);
        std::string conns = sink.connections();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), count(conns, "\"id\":"));
        CPPUNIT_ASSERT(contains(conns, "\"mails\": 3"));
        CPPUNIT_ASSERT(contains(conns, "\"messages\": 2"));
        CPPUNIT_ASSERT(contains(conns, "\"early_commands\": 0"));  // one command, one reply
    }

    void address_probe() {
        // stop_before_data (mxlanectl verify): MAIL and RCPT only; the next
        // transaction on the connection starts with RSET.
        for (std::string modes : {"", "nopipelining"}) {
            PySink sink(modes);
            Message probe = message({"ann@x.test", "hard1@x.test"});
            probe.env.stop_before_data = true;
            Outcome o = deliver(sink.ep(), "py.test", options(), {probe, message({"bob@x.test"})});
            const auto& p = o.results.at(0);
            CPPUNIT_ASSERT_EQUAL(250, p.rcpts.at(0).code);
            CPPUNIT_ASSERT_EQUAL(550, p.rcpts.at(1).code);
            CPPUNIT_ASSERT_EQUAL(0, p.data.code);
            CPPUNIT_ASSERT_EQUAL(250, o.results.at(1).data.code);
            std::string accepted = sink.accepted();
            CPPUNIT_ASSERT(!contains(accepted, "ann@x.test"));
            CPPUNIT_ASSERT(contains(accepted, "bob@x.test"));
            std::string conns = sink.connections();
            CPPUNIT_ASSERT(contains(conns, "\"mails\": 2"));
            CPPUNIT_ASSERT(contains(conns, "\"messages\": 1"));
        }
    }

    void smtputf8_not_offered() {
        PySink sink;
        Message m = message({"j\xc3\xb6rg@x.test"});
        m.env.smtputf8 = true;
        Outcome o = deliver(sink.ep(), "py.test", options(), {m});
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(std::string("5.6.7"), r.rcpts.at(0).enhanced);
        CPPUNIT_ASSERT(r.rcpts.at(0).permanent() && r.rcpts.at(0).synthetic);
        CPPUNIT_ASSERT(contains(sink.connections(), "\"mails\": 0"));
    }

    void no_recipient_but_354() {
        // RFC 2920 3.1: a server that answers DATA with 354 although no RCPT
        // succeeded gets an empty message, never the text.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c);
            c.line();  // MAIL
            c.line();  // RCPT
            c.line();  // RCPT
            c.line();  // DATA
            c.say("250 2.1.0 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go ahead");
            c.line();  // "." expected
            c.say("554 5.5.1 no valid recipients");
            for (std::string l = c.line(); !l.empty(); l = c.line()) c.say(l == "QUIT" ? "221 bye" : "250 ok");
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test", "b@x.test"}, "SECRET\n")});
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(550, r.rcpts.at(0).code);
        CPPUNIT_ASSERT_EQUAL(0, r.data.code);
        CPPUNIT_ASSERT(o.usable_after);
        auto lines = server.lines();
        CPPUNIT_ASSERT(lines.size() >= 6);
        CPPUNIT_ASSERT_EQUAL(std::string("DATA"), lines.at(4));
        CPPUNIT_ASSERT_EQUAL(std::string("."), lines.at(5));
        for (const auto& l : lines) CPPUNIT_ASSERT(l != "SECRET");
    }

    void mail_parameters() {
        // SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) go
        // out only when offered; a message over the announced SIZE is not sent.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250-PIPELINING\r\n250-SIZE 1000\r\n250-SMTPUTF8\r\n250 8BITMIME");
            accept_pipelined(c);
        });
        Message utf8 = message({"j\xc3\xb6rg@x.test"}, "Subject: caf\xc3\xa9\n\nbody\n");
        utf8.env.smtputf8 = true;
        utf8.env.extra_mail_params = "RET=HDRS";
        Message big = message({"a@x.test"}, std::string(2000, 'x') + "\n");
        Outcome o = deliver(server.ep(), "scripted.test", options(), {utf8, big});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        const auto& r = o.results.at(1).rcpts.at(0);
        CPPUNIT_ASSERT_EQUAL(552, r.code);
        CPPUNIT_ASSERT_EQUAL(std::string("5.3.4"), r.enhanced);
        auto lines = server.lines();
        std::size_t wire_size = to_wire(utf8.text).text.size();
        CPPUNIT_ASSERT_EQUAL("MAIL FROM:<sender@mxlane.test> SIZE=" + std::to_string(wire_size) +
                                 " BODY=8BITMIME SMTPUTF8 RET=HDRS",
                             lines.at(1));
        std::size_t mails = 0;
        for (const auto& l : lines) mails += l.rfind("MAIL FROM", 0) == 0;
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), mails);
    }

    void many_sessions_many_threads() {
        SmtpSink sink;
        const int sessions = 8, per_session = 25;
        // Started together on one io_context run by two threads: they interleave.
        asio::io_context io;
        std::atomic<int> delivered{0}, finished{0};
        for (int i = 0; i < sessions; ++i)
            asio::co_spawn(io, send_many(io.get_executor(), sink.ep(), per_session, delivered),
                           [&](std::exception_ptr e) { finished += e ? 0 : 1; });
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        CPPUNIT_ASSERT_EQUAL(sessions, finished.load());
        CPPUNIT_ASSERT_EQUAL(sessions * per_session, delivered.load());
    }

    void hostile_overlong_line() {
        PySink sink("hostile-longline");
        Outcome o = deliver(sink.ep(), "elsewhere.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.error.temporary() && o.error.synthetic);
        CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "longer than 8192 bytes"));
        CPPUNIT_ASSERT(o.seconds < 5);
    }

    void hostile_garbage() {
        PySink sink("hostile-garbage");
        Outcome o = deliver(sink.ep(), "elsewhere.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::helo);
        CPPUNIT_ASSERT_EQUAL(std::string("4.5.0"), o.error.enhanced);
        CPPUNIT_ASSERT_MESSAGE(o.error.text, contains(o.error.text, "malformed reply"));
    }

    void hostile_mismatched_multiline() {
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c);
            c.line();
            c.say("250-2.1.0 ok\r\n550 5.1.1 changed my mind");
            c.line();
        });
        Outcome o = deliver(server.ep(), "scripted.test", options(), {message({"a@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT(r.mail.temporary() && r.rcpts.at(0).temporary());
        CPPUNIT_ASSERT_MESSAGE(r.mail.text, contains(r.mail.text, "reply code changed from 250 to 550"));
        CPPUNIT_ASSERT(!o.usable_after);
    }

    void hostile_disconnect_mid_data() {
        PySink sink("hostile-dropdata");
        Outcome o = deliver(sink.ep(), "elsewhere.test", options(),
                            {message({"a@x.test"}, std::string(3 * 1024 * 1024, 'x') + "\n")});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT_EQUAL(250, r.rcpts.at(0).code);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT(r.data.temporary() && r.data.synthetic);
        CPPUNIT_ASSERT_MESSAGE(r.data.text, contains(r.data.text, "lost connection with elsewhere.test["));
        CPPUNIT_ASSERT(!o.usable_after);
        CPPUNIT_ASSERT(o.seconds < 15);
    }

    void hostile_drip_greeting() {
        PySink sink("hostile-drip");
        Options opts = options();
        opts.timeouts.helo = seconds(2);
        Outcome o = deliver(sink.ep(), "elsewhere.test", opts, {message({"a@x.test"})});
        CPPUNIT_ASSERT(!o.opened);
        CPPUNIT_ASSERT(o.stage == Stage::greeting);
        CPPUNIT_ASSERT_MESSAGE(o.error.text,
                               contains(o.error.text, "timed out while receiving the initial server greeting"));
        CPPUNIT_ASSERT(o.seconds >= 1.9 && o.seconds < 4);
    }

    void hostile_drip_rcpt() {
        // One byte every 300 ms never lets a read wait long, but the step
        // (the whole RCPT reply) must still end at its limit.
        ScriptedServer server([](ScriptedServer::Conn& c) {
            greet(c, "250 8BITMIME");
            c.line();
            c.say("250 2.1.0 ok");
            c.line();
            for (char ch : std::string("250 2.1.5 ok, eventually\r\n")) {
                if (!c.raw(std::string(1, ch))) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
            }
        });
        Options opts = options();
        opts.timeouts.rcpt = seconds(2);
        Outcome o = deliver(server.ep(), "slow.test", opts, {message({"a@x.test"})});
        CPPUNIT_ASSERT(o.opened);
        const auto& r = o.results.at(0);
        CPPUNIT_ASSERT(r.connection_lost);
        CPPUNIT_ASSERT_MESSAGE(r.rcpts.at(0).text,
                               contains(r.rcpts.at(0).text, "timed out while sending RCPT TO"));
        CPPUNIT_ASSERT(o.seconds < 5);
    }
};

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

CPPUNIT_TEST_SUITE_REGISTRATION(MessageDataTest);
CPPUNIT_TEST_SUITE_REGISTRATION(SmtpSessionTest);
CPPUNIT_TEST_SUITE_REGISTRATION(SmtpProtocolTest);
