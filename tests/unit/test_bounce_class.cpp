// test_bounce_class: a corpus of replies in the shape the big receivers send, each with the class it must get.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "libshared/bounce_class.hpp"
#include "libshared/smtp_reply.hpp"

using namespace mxlane;

namespace {

struct Sample {
    const char* reply;  // "CODE ENHANCED text" as a server (or mxlane itself) says it
    const char* cls;
};

// Written after the codes and key phrases the providers document for their
// replies; the wording is ours.
const std::vector<Sample> kCorpus{
    // Gmail
    {"550 5.1.1 The email account that you tried to reach does not exist. Please check the address", "invalid-recipient"},
    {"550 5.2.1 The email account that you tried to reach is disabled", "invalid-recipient"},
    {"452 4.2.2 The email account that you tried to reach is over quota", "mailbox-full"},
    {"552 5.2.2 The recipient's inbox is out of storage space", "mailbox-full"},
    {"421 4.7.28 Our system has detected an unusual rate of unsolicited mail from your IP; rate limited", "rate-limit"},
    {"450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents delivery", "rate-limit"},
    {"550 5.7.26 Unauthenticated email from shop.test is not accepted due to the domain's DMARC policy", "auth"},
    {"550 5.7.26 This mail has been blocked because the sender is unauthenticated", "auth"},
    {"421 4.7.27 Your email has been rate limited because SPF authentication didn't pass", "auth"},
    {"550 5.7.27 The sender's SPF record does not authorize this sending IP", "auth"},
    {"421 4.7.30 DKIM authentication did not pass for this message", "auth"},
    {"550 5.7.32 The From: header is not aligned with the authenticated domains", "auth"},
    {"550 5.7.25 The IP address sending this message does not have a PTR record", "auth"},
    {"550 5.7.1 Our system has detected that this message is likely unsolicited mail", "policy"},
    {"421 4.7.0 Your IP has a poor reputation; try again later", "policy"},
    {"552 5.7.0 This message was blocked because its content presents a potential security issue (virus)", "content"},
    {"552 5.3.4 Your message exceeded the message size limit", "content"},
    {"421 4.7.29 TLS is required for mail from your IP", "policy"},
    // Microsoft (Outlook.com, Exchange Online)
    {"550 5.5.0 Requested action not taken: mailbox unavailable", "invalid-recipient"},
    {"550 5.4.1 Recipient address rejected: Access denied", "invalid-recipient"},
    {"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "invalid-recipient"},
    {"451 4.7.650 The mail server has been temporarily rate limited due to IP reputation", "rate-limit"},
    {"451 4.7.651 The mail server is rate limited for this recipient domain", "rate-limit"},
    {"550 5.7.515 Access denied, sending domain does not meet the required authentication level", "auth"},
    {"550 5.7.606 Access denied, banned sending IP", "policy"},
    {"550 5.7.511 Access denied, banned sender", "policy"},
    {"550 5.7.708 Access denied, traffic not accepted from this IP", "policy"},
    {"554 5.7.1 Service unavailable; Client host blocked using Spamhaus", "policy"},
    {"452 4.5.3 Too many recipients", "protocol"},
    {"550 5.2.2 Mailbox full", "mailbox-full"},
    // Yahoo / AOL
    {"421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints", "rate-limit"},
    {"421 4.7.0 [TSS05] Messages temporarily deferred due to user complaints", "rate-limit"},
    {"554 5.7.9 Message not accepted for policy reasons", "policy"},
    {"554 delivery error: dd This user doesn't have a yahoo.test account", "invalid-recipient"},
    {"554 delivery error: dd Sorry your message to ann@yahoo.test cannot be delivered. This mailbox is disabled", "invalid-recipient"},
    {"553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.7, because the ip is in Spamhaus's list", "policy"},
    {"550 5.7.9 This mail has been blocked because the sender is unauthenticated (DMARC)", "auth"},
    // Apple (iCloud)
    {"550 5.1.1 <ann@icloud.test>: user does not exist", "invalid-recipient"},
    {"552 5.2.2 <ann@icloud.test>: user is over quota", "mailbox-full"},
    {"554 5.7.1 [CS01] Message rejected due to local policy", "policy"},
    {"421 4.7.0 [HM08] Message from 192.0.2.7 throttled, try later", "rate-limit"},
    // Comcast, GMX / Web.de, Postfix and Exim servers
    {"550 5.1.1 Not our Customer", "invalid-recipient"},
    {"554 5.7.1 Comcast block for spam", "policy"},
    {"450 4.7.1 Client host rejected: too many connections from your IP", "rate-limit"},
    {"550 Requested action not taken: mailbox unavailable | invalid DNS PTR resource record", "auth"},
    {"554-gmx.test (mxgmx) Nemesis ESMTP Service not available; Requested action aborted: reputation", "policy"},
    {"550 5.1.1 <x@web.test>: Recipient address rejected: User unknown in virtual mailbox table", "invalid-recipient"},
    {"450 4.2.0 <ann@shop.test>: Recipient address rejected: Greylisted, see https://postgrey.test", "rate-limit"},
    {"451 4.7.1 Please try again later (greylisting)", "rate-limit"},
    {"550 5.7.1 <ann@shop.test>: Relay access denied", "policy"},
    {"550 unknown user", "invalid-recipient"},
    {"550 No such user here", "invalid-recipient"},
    {"552 Mailbox exceeded storage allocation", "mailbox-full"},
    {"550 5.7.1 Message rejected: attachment type not allowed", "content"},
    {"554 5.6.0 Message content rejected", "content"},
    {"550 5.7.23 SPF validation failed", "auth"},
    {"550 5.7.20 No passing DKIM signature found", "auth"},
    {"500 5.5.1 Command unrecognized", "protocol"},
    {"503 5.5.1 Error: need MAIL command", "protocol"},
    {"550 5.1.2 Bad destination system address", "bad-domain"},
    {"554 5.3.0 Other mail system problem", "other"},
    {"451 4.3.0 Temporary lookup failure", "other"},
    {"550 Administrative prohibition", "other"},
    // what mxlane itself says
    {"451 4.4.1 connect to mx.shop.test[192.0.2.7]:25: Connection refused", "network"},
    {"451 4.4.2 lost connection with mx.shop.test[192.0.2.7] while sending RCPT TO", "network"},
    {"451 4.4.2 conversation with mx.shop.test[192.0.2.7] timed out while receiving the greeting", "network"},
    {"451 4.4.3 Host or domain name lookup failed: Name service error for name=shop.test type=MX", "network"},
    {"550 5.4.4 Host or domain name not found. Name service error for name=nx.test type=MX", "bad-domain"},
    {"556 5.1.10 Domain nx.test does not accept mail (nullMX)", "bad-domain"},
    {"451 4.5.0 mx.shop.test[192.0.2.7] answered DATA with 250 instead of 354 (protocol error)", "protocol"},
    {"550 5.6.7 SMTPUTF8 is required, but was not offered by host mx.shop.test", "protocol"},
    {"451 4.7.1 host mx.shop.test[192.0.2.7] refused to talk to me: 554 5.7.1 listed", "policy"},
    {"554 5.4.6 mail for shop.test loops back to myself", "network"},
};

}  // namespace

class BounceClassTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(BounceClassTest);
    CPPUNIT_TEST(corpus);
    CPPUNIT_TEST(successes_have_no_class);
    CPPUNIT_TEST(only_dead_addresses_are_dead);
    CPPUNIT_TEST_SUITE_END();

public:
    void corpus() {
        CPPUNIT_ASSERT(kCorpus.size() >= 60);
        std::string wrong;
        for (const auto& s : kCorpus) {
            std::string_view line(s.reply);
            const int code = std::stoi(std::string(line.substr(0, 3)));
            std::string_view rest = line.substr(4);
            std::string got(class_name(classify_reply(code, enhanced_code_prefix(rest, code), line)));
            if (got != s.cls) wrong += std::string("\n  ") + s.reply + ": got " + got + ", want " + s.cls;
        }
        CPPUNIT_ASSERT_MESSAGE(wrong, wrong.empty());
    }

    void successes_have_no_class() {
        CPPUNIT_ASSERT(classify_reply(250, "2.0.0", "250 2.0.0 Ok: queued as 4Xq") == BounceClass::none);
        CPPUNIT_ASSERT(classify_reply(0, "", "") == BounceClass::none);
        CPPUNIT_ASSERT_EQUAL(std::string(""), std::string(class_name(BounceClass::none)));
    }

    // The words of a reply cannot make a full mailbox or a rate limit look like a dead address.
    void only_dead_addresses_are_dead() {
        CPPUNIT_ASSERT(classify_reply(452, "4.2.2", "452 4.2.2 mailbox full, user does not exist soon") ==
                       BounceClass::mailbox_full);
        CPPUNIT_ASSERT(classify_reply(421, "4.7.28", "421 4.7.28 user unknown rate") == BounceClass::rate_limit);
        CPPUNIT_ASSERT(classify_reply(550, "5.7.26", "550 5.7.26 no such user") == BounceClass::auth);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(BounceClassTest);
