// test_smtp_session: the SMTP client against real servers on loopback (smtp-sink, the pysink
// fixture): dialogue, pipelining, timeouts, hostile servers, and message_data. Replies checked
// against each step and loop detection: test_smtp_protocol.cpp. TLS and AUTH: test_smtp_tls.cpp.
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
    CPPUNIT_TEST(leading_fields_for_the_accepted);
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

    // The relay's loop header is made after the RCPT replies, for the recipients
    // the server took and the text as it goes out, and goes before that text.
    void leading_fields_for_the_accepted() {
        PySink sink;
        Message m = message({"ann@x.test", "hard1@x.test", "bob@x.test"}, "Subject: s\n\nbody\n");
        std::vector<std::string> seen_rcpts;
        std::string seen_data;
        m.env.leading_fields = [&](const std::vector<std::string>& accepted, const std::string& data) {
            seen_rcpts = accepted;
            seen_data = data;
            return std::string("X-Lead: for ") + std::to_string(accepted.size()) + "\r\n";
        };
        Outcome o = deliver(sink.ep(), "py.test", options(), {m});
        CPPUNIT_ASSERT_EQUAL(250, o.results.at(0).data.code);
        CPPUNIT_ASSERT((seen_rcpts == std::vector<std::string>{"ann@x.test", "bob@x.test"}));
        CPPUNIT_ASSERT_EQUAL(to_wire(m.text).text, seen_data);
        CPPUNIT_ASSERT(contains(sink.mbox(), "X-Lead: for 2\nSubject: s\n"));
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

CPPUNIT_TEST_SUITE_REGISTRATION(MessageDataTest);
CPPUNIT_TEST_SUITE_REGISTRATION(SmtpSessionTest);
