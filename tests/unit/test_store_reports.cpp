// test_store_reports: asynchronous bounces, complaints and the suppression list's reason, time and job.
#include <cppunit/extensions/HelperMacros.h>

#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;

class StoreReportsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreReportsTest);
    CPPUNIT_TEST(suppression_record_versions);
    CPPUNIT_TEST(synchronous_bounce_suppresses_with_job);
    CPPUNIT_TEST(bounce_after_delivery);
    CPPUNIT_TEST(bounce_after_refuses_what_cannot_bounce);
    CPPUNIT_TEST(complaints_counted_once_per_recipient);
    CPPUNIT_TEST(suppressions_counted_by_job_and_reason);
    CPPUNIT_TEST_SUITE_END();

    // A job of three recipients, all delivered; returns them in seq order.
    static std::vector<Recipient> delivered_job(QueueStore& q, std::initializer_list<const char*> rcpts) {
        add(q, intake("", rcpts), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        std::vector<Outcome> outs;
        for (const auto& r : c.due) outs.push_back(outcome(r, RcptState::delivered));
        q.write_results(outs);
        return c.due;
    }

public:
    void suppression_record_versions() {
        // A record as written before the job was kept: time and reason only.
        Encoder e;
        e.i64(77).str("added by mxlanectl");
        auto old = Suppression::decode("a@x.test", e.take());
        CPPUNIT_ASSERT_EQUAL(std::string("added by mxlanectl"), old.reason);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(77), old.added);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), old.job);
        auto now = Suppression::decode("a@x.test", Suppression{"a@x.test", "complaint", 9, 42}.encode());
        CPPUNIT_ASSERT_EQUAL(std::string("complaint"), now.reason);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(42), now.job);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(9), now.added);
    }

    void synchronous_bounce_suppresses_with_job() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"dead@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        auto o = outcome(c.due.at(0), RcptState::bounced);
        o.reply_text = "550 5.1.1 no such user";
        o.suppress = true;
        q.write_results(std::vector<Outcome>{o});
        auto all = q.suppressions();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("bounce"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(res.job_id, all[0].job);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5000), all[0].added);
    }

    void bounce_after_delivery() {
        TempDir dir;
        QueueStore q(dir.path());
        auto rs = delivered_job(q, {"ann@x.test", "bob@x.test", "cy@x.test"});
        const auto job_id = rs[0].job_id;
        CPPUNIT_ASSERT(q.bounce_after(job_id, rs[0].seq, "5.1.1", "550 5.1.1 <ann@x.test>: no such user", true, 7000));
        CPPUNIT_ASSERT(q.bounce_after(job_id, rs[1].seq, "5.2.2", "552 5.2.2 mailbox full", false, 7000));
        auto ann = *q.recipient(job_id, rs[0].seq);
        CPPUNIT_ASSERT(ann.state == RcptState::bounced);
        CPPUNIT_ASSERT_EQUAL(std::string("5.1.1"), ann.dsn);
        CPPUNIT_ASSERT_EQUAL(550, ann.reply_code);
        CPPUNIT_ASSERT_EQUAL(std::string("550 5.1.1 <ann@x.test>: no such user"), ann.reply_text);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid-recipient"), std::string(failure_class(ann)));
        auto job = q.job(job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::delivered)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::bounced)]);
        CPPUNIT_ASSERT(job->state == JobState::done);
        CPPUNIT_ASSERT(!q.next_due());  // nothing went back into the due index
        auto all = q.suppressions();
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());  // only the dead mailbox
        CPPUNIT_ASSERT_EQUAL(std::string("ann@x.test"), all[0].address);
        CPPUNIT_ASSERT_EQUAL(std::string("bounce"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(job_id, all[0].job);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7000), all[0].added);
    }

    void bounce_after_refuses_what_cannot_bounce() {
        TempDir dir;
        QueueStore q(dir.path());
        auto rs = delivered_job(q, {"ann@x.test"});
        const auto job_id = rs[0].job_id;
        CPPUNIT_ASSERT(q.bounce_after(job_id, rs[0].seq, "5.1.1", "gone", false, 7000));
        // Already bounced: a second report changes nothing (not even the text).
        CPPUNIT_ASSERT(!q.bounce_after(job_id, rs[0].seq, "5.7.1", "other", true, 8000));
        CPPUNIT_ASSERT_EQUAL(std::string("gone"), q.recipient(job_id, rs[0].seq)->reply_text);
        CPPUNIT_ASSERT(q.suppressions().empty());
        // No such recipient, no such job.
        CPPUNIT_ASSERT(!q.bounce_after(job_id, rs[0].seq + 1, "5.1.1", "x", true, 8000));
        CPPUNIT_ASSERT(!q.bounce_after(job_id + 100, rs[0].seq, "5.1.1", "x", true, 8000));
        // A recipient still waiting for delivery: its own next attempt decides.
        auto pending = add(q, intake("", {"later@x.test"}), 1000);
        auto seq = q.messages(pending.job_id).at(0).id << kIndexBits;
        CPPUNIT_ASSERT(!q.bounce_after(pending.job_id, seq, "5.1.1", "x", true, 8000));
        CPPUNIT_ASSERT(q.recipient(pending.job_id, seq)->state == RcptState::queued);
        CPPUNIT_ASSERT(q.next_due());
        CPPUNIT_ASSERT(q.suppressions().empty());
    }

    // What each job put on the list, by reason; another job's entries and those of none count for neither.
    void suppressions_counted_by_job_and_reason() {
        TempDir dir;
        QueueStore q(dir.path());
        auto rs = delivered_job(q, {"ann@x.test", "bob@x.test", "cy@x.test", "dee@x.test"});
        const auto job_id = rs[0].job_id;
        CPPUNIT_ASSERT(q.bounce_after(job_id, rs[0].seq, "5.1.1", "550 5.1.1 gone", true, 7000));
        CPPUNIT_ASSERT(q.complaint(job_id, rs[1].seq, 7000));
        CPPUNIT_ASSERT(q.suppress("cy@x.test", "unsubscribed", 7000, job_id));
        CPPUNIT_ASSERT(q.suppress("dee@x.test", "unsubscribed", 7000, job_id));
        CPPUNIT_ASSERT(q.suppress("other@x.test", "manual", 7000));
        CPPUNIT_ASSERT(q.suppress("else@x.test", "complaint", 7000, job_id + 1));
        const std::map<std::string, std::uint64_t> want = {
            {"bounce", 1}, {"complaint", 1}, {"manual", 0}, {"unsubscribed", 2}};
        CPPUNIT_ASSERT(want == q.suppressions_of(job_id));
        CPPUNIT_ASSERT_EQUAL(std::string("4 (bounce 1, complaint 1, manual 0, unsubscribed 2)"),
                             suppression_summary(q.suppressions_of(job_id)));
        CPPUNIT_ASSERT_EQUAL(std::string("0 (bounce 0, complaint 0, manual 0, unsubscribed 0)"),
                             suppression_summary(q.suppressions_of(job_id + 7)));
        CPPUNIT_ASSERT_EQUAL(std::string("unsubscribed"), q.suppression("CY@x.test")->reason);
        CPPUNIT_ASSERT(!q.suppression("nobody@x.test"));
    }

    void complaints_counted_once_per_recipient() {
        TempDir dir;
        QueueStore q(dir.path());
        auto rs = delivered_job(q, {"ann@x.test", "bob@x.test", "cy@x.test"});
        const auto job_id = rs[0].job_id;
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), q.complaints(job_id));
        CPPUNIT_ASSERT(q.suppress("bob@x.test", "unsubscribed", 10));
        auto a = q.complaint(job_id, rs[0].seq, 9000);
        CPPUNIT_ASSERT(a && a->counted);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), a->complaints);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), a->delivered);
        CPPUNIT_ASSERT_EQUAL(std::string("ann@x.test"), a->address);
        auto again = q.complaint(job_id, rs[0].seq, 9100);  // the same report twice
        CPPUNIT_ASSERT(again && !again->counted);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), again->complaints);
        auto b = q.complaint(job_id, rs[1].seq, 9200);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), b->complaints);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), q.complaints(job_id));
        CPPUNIT_ASSERT(!q.complaint(job_id, rs[2].seq + 5, 9300));
        CPPUNIT_ASSERT(!q.complaint(job_id + 9, rs[2].seq, 9300));
        auto all = q.suppressions();
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("complaint"), all[0].reason);  // ann
        CPPUNIT_ASSERT_EQUAL(job_id, all[0].job);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(9000), all[0].added);
        CPPUNIT_ASSERT_EQUAL(std::string("unsubscribed"), all[1].reason);  // bob's earlier entry stays
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), all[1].job);
        // A deleted job takes its count and marks along; the suppressions stay.
        q.remove_job(job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), q.complaints(job_id));
        CPPUNIT_ASSERT(!q.complaint(job_id, rs[0].seq, 9400));
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.suppressions().size());
        auto left = q.env().transact([&](DbTxn* txn) {
            std::size_t n = 0;
            detail::scan(q.env().meta(), txn, "complain", "complain", [&](const std::string&, const std::string&) {
                ++n;
                return true;
            });
            return n;
        });
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), left);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreReportsTest);
