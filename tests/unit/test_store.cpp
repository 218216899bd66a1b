// test_store: the queue store's records, intake, due index order and ranges, claims, results, admin.
#include <cppunit/extensions/HelperMacros.h>

#include "tests/unit/store_fixtures.hpp"

using namespace store_fixtures;

class StoreTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StoreTest);
    CPPUNIT_TEST(job_ids);
    CPPUNIT_TEST(record_round_trip);
    CPPUNIT_TEST(intake_and_read_back);
    CPPUNIT_TEST(named_jobs_join);
    CPPUNIT_TEST(done_job_never_reopened);
    CPPUNIT_TEST(job_names_per_owner);
    CPPUNIT_TEST(large_text_in_chunks);
    CPPUNIT_TEST(due_index_order_and_range);
    CPPUNIT_TEST(claim_results_and_counts);
    CPPUNIT_TEST(expiry_and_suppression_at_claim);
    CPPUNIT_TEST(expiry_boundary_at_claim);
    CPPUNIT_TEST(inflight_recovery);
    CPPUNIT_TEST(flush_hold_release_delete);
    CPPUNIT_TEST(due_index_follows_every_write);
    CPPUNIT_TEST(reopen_keeps_everything);
    CPPUNIT_TEST(suspensions);
    CPPUNIT_TEST(suspensions_survive_reopen);
    CPPUNIT_TEST_SUITE_END();

public:
    void job_ids() {
        CPPUNIT_ASSERT_EQUAL(std::string("J00002A"), format_job_id(42));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(42), *parse_job_id("J00002A"));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(42), *parse_job_id("j2a"));
        CPPUNIT_ASSERT(!parse_job_id("42"));
        CPPUNIT_ASSERT(!parse_job_id("J"));
        CPPUNIT_ASSERT(!parse_job_id("JXYZ"));
        CPPUNIT_ASSERT(!parse_job_id("J0"));
        CPPUNIT_ASSERT_EQUAL(std::string("deferred"), std::string(state_name(RcptState::deferred)));
        CPPUNIT_ASSERT(*parse_state("relayed") == RcptState::relayed);
        CPPUNIT_ASSERT(!parse_state("lost"));
    }

    void record_round_trip() {
        Job j;
        j.name = "spring";
        j.state = JobState::held;
        j.hold_reason = "no DKIM key";
        CPPUNIT_ASSERT_EQUAL(std::string("no DKIM key"), Job::decode(5, j.encode()).hold_reason);
        j.hold_reason.clear();  // written as before the field existed, and read back so
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), Job::decode(5, j.encode()).name);
        CPPUNIT_ASSERT_EQUAL(std::string(), Job::decode(5, j.encode()).hold_reason);
        Recipient r;
        r.job_id = 7;
        r.seq = make_seq(3, 9);
        r.message_id = 3;
        r.address = "ann@example.test";
        r.fields = {"Ann", "x,y"};
        r.state = RcptState::deferred;
        r.attempts = 2;
        r.next_attempt = 1234567;
        r.reply_code = 451;
        r.dsn = "4.3.0";
        r.reply_text = "451 4.3.0 later";
        r.host = "mx[127.0.0.1]:25";
        Recipient back = Recipient::decode(r.key(), r.encode());
        CPPUNIT_ASSERT_EQUAL(r.address, back.address);
        CPPUNIT_ASSERT(back.fields == r.fields);
        CPPUNIT_ASSERT(back.state == RcptState::deferred);
        CPPUNIT_ASSERT_EQUAL(r.next_attempt, back.next_attempt);
        CPPUNIT_ASSERT_EQUAL(r.seq, back.seq);
        CPPUNIT_ASSERT_EQUAL(r.host, back.host);
        CPPUNIT_ASSERT(Recipient::due_key(r.key(), r.encode()).has_value());
        r.state = RcptState::delivered;
        CPPUNIT_ASSERT(!Recipient::due_key(r.key(), r.encode()).has_value());
        CPPUNIT_ASSERT_THROW(Recipient::decode(r.key(), r.encode().substr(0, 12)), CodecError);
    }

    void intake_and_read_back() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@one.test", "b@two.test", "c@one.test"}), 1000);
        CPPUNIT_ASSERT(res.new_job);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), res.recipients);
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT(job);
        CPPUNIT_ASSERT_EQUAL(std::string("news@sender.test"), job->sender);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), job->counts[0]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->messages);
        auto msgs = q.messages(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), msgs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("Subject: t\n\nhi\n"), q.text(msgs[0]));
        CPPUNIT_ASSERT_EQUAL(std::string("4Xq1"), msgs[0].host_queue_id);
        std::vector<std::string> seen;
        q.each_recipient(res.job_id, std::nullopt, [&](const Recipient& r) {
            seen.push_back(r.address);
            CPPUNIT_ASSERT(r.state == RcptState::queued);
            CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), r.next_attempt);
            return true;
        });
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), seen.size());
        CPPUNIT_ASSERT_EQUAL(std::string("a@one.test"), seen[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("c@one.test"), seen[2]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.jobs().size());
    }

    void named_jobs_join() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, intake("spring", {"a@x.test"}), 1000);
        auto b = add(q, intake("spring", {"b@x.test", "c@x.test"}), 2000);
        auto c = add(q, intake("", {"d@x.test"}), 3000);
        auto d = add(q, intake("", {"e@x.test"}), 3000);
        CPPUNIT_ASSERT_EQUAL(a.job_id, b.job_id);
        CPPUNIT_ASSERT(!b.new_job);
        CPPUNIT_ASSERT(c.job_id != a.job_id && d.job_id != c.job_id);
        auto job = q.job(a.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->messages);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(3), job->total());
        CPPUNIT_ASSERT_EQUAL(a.job_id, *q.job_by_name("spring"));
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.jobs().size());
    }

    // A finished job stays finished: a new message with its name starts a new job.
    void done_job_never_reopened() {
        TempDir dir;
        QueueStore q(dir.path());
        auto a = add(q, intake("spring", {"a@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)}).size());
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        auto b = add(q, intake("spring", {"b@x.test"}), 2000);
        CPPUNIT_ASSERT(b.new_job);
        CPPUNIT_ASSERT(b.job_id != a.job_id);
        CPPUNIT_ASSERT(q.job(a.job_id)->state == JobState::done);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), q.job(a.job_id)->total());
        CPPUNIT_ASSERT(q.job(b.job_id)->state == JobState::active);
        CPPUNIT_ASSERT_EQUAL(b.job_id, *q.job_by_name("spring"));  // the name now means the new job
        auto d = add(q, intake("spring", {"d@x.test"}), 3000);     // which later mail joins
        CPPUNIT_ASSERT_EQUAL(b.job_id, d.job_id);
    }

    // Two owners (senders, logins) using one job name get two jobs; both show the plain name.
    void job_names_per_owner() {
        TempDir dir;
        QueueStore q(dir.path());
        Intake ann = intake("spring", {"a@x.test"}), bob = intake("spring", {"b@x.test"});
        ann.job_owner = "ann@corp.test";
        bob.job_owner = "bob@corp.test";
        auto a1 = add(q, ann, 1000), b1 = add(q, bob, 1000), a2 = add(q, ann, 2000);
        CPPUNIT_ASSERT(a1.job_id != b1.job_id);
        CPPUNIT_ASSERT_EQUAL(a1.job_id, a2.job_id);
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), q.job(a1.job_id)->name);
        CPPUNIT_ASSERT_EQUAL(std::string("spring"), q.job(b1.job_id)->name);
        auto plain = add(q, intake("spring", {"c@x.test"}), 3000);  // no owner (mxlanectl): a third
        CPPUNIT_ASSERT(plain.job_id != a1.job_id && plain.job_id != b1.job_id);
    }

    void large_text_in_chunks() {
        TempDir dir;
        QueueStore q(dir.path());
        std::string text = "Subject: big\n\n";
        for (int i = 0; text.size() < 300000; ++i) text += "line " + std::to_string(i) + "\n";
        auto res = add(q, intake("", {"a@x.test"}), 1, text);
        auto m = q.messages(res.job_id).at(0);
        CPPUNIT_ASSERT(m.chunks >= 5);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(text.size()), m.size);
        std::size_t pieces = 0;
        q.read_text(m, [&](std::string_view) { ++pieces; });
        CPPUNIT_ASSERT_EQUAL(std::size_t(m.chunks), pieces);
        CPPUNIT_ASSERT(q.text(m) == text);
    }

    void due_index_order_and_range() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"late@x.test"}), 9000);
        add(q, intake("", {"early@x.test"}), 1000);
        add(q, intake("", {"mid1@x.test", "mid2@x.test"}), 5000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), *q.next_due());
        // Only what is due by `until`, in time order.
        auto c = q.claim_due(5000, 100, 5000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("early@x.test"), c.due[0].address);
        CPPUNIT_ASSERT_EQUAL(std::string("mid1@x.test"), c.due[1].address);
        CPPUNIT_ASSERT_EQUAL(std::string("mid2@x.test"), c.due[2].address);
        // Claimed recipients left the due range: the next scan sees only the late one.
        auto c2 = q.claim_due(10000, 100, 10000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c2.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("late@x.test"), c2.due[0].address);
        CPPUNIT_ASSERT(q.claim_due(20000, 100, 20000, 0).due.empty());
        // The limit bounds a claim.
        TempDir dir2;
        QueueStore q2(dir2.path());
        add(q2, intake("", {"a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"}), 1);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q2.claim_due(10, 2, 10, 0).due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q2.claim_due(10, 10, 10, 0).due.size());
    }

    void claim_results_and_counts() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), q.inflight_count(res.job_id));
        std::vector<Outcome> out = {outcome(c.due[0], RcptState::delivered), outcome(c.due[1], RcptState::deferred, 8000)};
        auto finished = q.write_results(out);
        CPPUNIT_ASSERT(finished.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.inflight_count(res.job_id));
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::delivered)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::deferred)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::queued)]);
        auto b = q.recipient(res.job_id, c.due[1].seq);
        CPPUNIT_ASSERT_EQUAL(std::uint32_t(1), b->attempts);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(8000), b->next_attempt);
        CPPUNIT_ASSERT_EQUAL(std::string("451 4.3.0 later"), b->reply_text);
        // The deferred one comes due at its next attempt time.
        CPPUNIT_ASSERT(q.claim_due(7999, 10, 7999, 0).due.empty());
        auto again = q.claim_due(8000, 10, 8000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), again.due.size());
        finished = q.write_results(std::vector<Outcome>{outcome(again.due[0], RcptState::delivered),
                                                        outcome(c.due[2], RcptState::bounced)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), finished.size());
        CPPUNIT_ASSERT_EQUAL(res.job_id, finished[0]);
        job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::done);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::delivered)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::bounced)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(0), job->pending());
        CPPUNIT_ASSERT(!q.next_due());
    }

    void expiry_and_suppression_at_claim() {
        TempDir dir;
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.suppress("Dead@X.test", "550 5.1.1 gone", 1));
        CPPUNIT_ASSERT(!q.suppress("dead@x.test", "again", 2));
        auto res = add(q, intake("", {"dead@x.test", "old@x.test", "new@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c.suppressed.size());
        CPPUNIT_ASSERT_EQUAL(std::string("dead@x.test"), c.suppressed[0].address);
        // old is deferred, then its lifetime (3 s) runs out before its next attempt.
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::deferred, 2000),
                                             outcome(c.due[1], RcptState::deferred, 9000)});
        auto c2 = q.claim_due(5000, 10, 5000, 3000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c2.expired.size());
        CPPUNIT_ASSERT_EQUAL(std::string("old@x.test"), c2.expired[0].address);
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::suppressed)]);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), job->counts[static_cast<int>(RcptState::expired)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.suppressions().size());
        CPPUNIT_ASSERT(q.unsuppress("dead@x.test"));
        CPPUNIT_ASSERT(!q.is_suppressed("dead@x.test"));
        // A bounce with suppress set puts the address on the list in the same transaction.
        auto c3 = q.claim_due(9000, 10, 9000, 0);
        auto o = outcome(c3.due.at(0), RcptState::bounced);
        o.suppress = true;
        q.write_results(std::vector<Outcome>{o});
        CPPUNIT_ASSERT(q.is_suppressed("new@x.test"));
    }

    // A deferred recipient queued at 1000 with a 3 s lifetime: claimed at
    // 3999, expired by the claim at 4000, as lifetime_over says.
    void expiry_boundary_at_claim() {
        TempDir dir;
        QueueStore q(dir.path());
        add(q, intake("", {"old@x.test"}), 1000);
        auto first = q.claim_due(1000, 10, 1000, 3000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), first.due.at(0).queued_at);
        q.write_results(std::vector<Outcome>{outcome(first.due[0], RcptState::deferred, 2000)});
        CPPUNIT_ASSERT(!mxlane::lifetime_over(1000, 3999, 3000));
        auto before = q.claim_due(3999, 10, 3999, 3000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), before.due.size());
        CPPUNIT_ASSERT(before.expired.empty());
        q.write_results(std::vector<Outcome>{outcome(before.due[0], RcptState::deferred, 2000)});
        CPPUNIT_ASSERT(mxlane::lifetime_over(1000, 4000, 3000));
        auto at = q.claim_due(4000, 10, 4000, 3000);
        CPPUNIT_ASSERT(at.due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), at.expired.size());
        CPPUNIT_ASSERT(at.expired[0].state == RcptState::expired);
    }

    void inflight_recovery() {
        TempDir dir;
        {
            QueueStore q(dir.path());
            add(q, intake("", {"a@x.test", "b@x.test"}), 1000);
            auto c = q.claim_due(1000, 10, 1000, 0);
            CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
            q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered)});
            // b stays in flight: its process "dies" here.
        }
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.claim_due(2000, 10, 2000, 0).due.empty());  // in flight: not due
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.recover_inflight(2000));
        auto c = q.claim_due(2000, 10, 2000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), c.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("b@x.test"), c.due[0].address);
    }

    void flush_hold_release_delete() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("j", {"a@x.test", "b@x.test"}), 1000);
        auto c = q.claim_due(1000, 10, 1000, 0);
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::deferred, 900000),
                                             outcome(c.due[1], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT(q.claim_due(2000, 10, 2000, 0).due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.flush(res.job_id, 2000));
        auto due = q.claim_due(2000, 10, 2000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), due.due.size());
        q.write_results(std::vector<Outcome>{outcome(due.due[0], RcptState::deferred, 900000),
                                             outcome(due.due[1], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.hold(res.job_id, "no DKIM key for x.test"));
        auto job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::held);
        CPPUNIT_ASSERT_EQUAL(std::string("no DKIM key for x.test"), job->hold_reason);
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::held)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.flush(std::nullopt, 3000));  // held ones are not flushed
        CPPUNIT_ASSERT(q.claim_due(999999, 10, 3000, 0).due.empty());
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.release(res.job_id, 4000));
        job = q.job(res.job_id);
        CPPUNIT_ASSERT(job->state == JobState::active);
        CPPUNIT_ASSERT_EQUAL(std::string(), job->hold_reason);  // a release forgets it
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(2), job->counts[static_cast<int>(RcptState::deferred)]);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), q.claim_due(4000, 10, 4000, 0).due.size());
        q.remove_job(res.job_id);
        CPPUNIT_ASSERT(!q.job(res.job_id));
        CPPUNIT_ASSERT(q.jobs().empty());
        CPPUNIT_ASSERT(!q.job_by_name("j"));
        CPPUNIT_ASSERT(!q.next_due());
        CPPUNIT_ASSERT_EQUAL(std::size_t(0), q.inflight_count(0));
    }

    // The due index is kept by hand: each write that moves a recipient in or out
    // of it must leave exactly one entry for each pending recipient not in flight.
    void due_index_follows_every_write() {
        TempDir dir;
        QueueStore q(dir.path());
        auto res = add(q, intake("k", {"a@x.test", "b@x.test", "c@x.test"}), 1000);
        auto c = q.claim_due(1000, 2, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.scanned);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), c.due.size());
        // c stays due at 1000; a and b are in flight and out of the index.
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), *q.next_due());
        auto rest = q.claim_due(1000, 10, 1000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), rest.due.size());
        CPPUNIT_ASSERT_EQUAL(std::string("c@x.test"), rest.due[0].address);
        CPPUNIT_ASSERT(!q.next_due());
        // Results: the deferred one comes back at its time, the others never.
        q.write_results(std::vector<Outcome>{outcome(c.due[0], RcptState::delivered),
                                             outcome(c.due[1], RcptState::deferred, 5000),
                                             outcome(rest.due[0], RcptState::bounced)});
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5000), *q.next_due());
        // Hold takes it out, release puts it back at the release time, flush moves it.
        q.hold(res.job_id);
        CPPUNIT_ASSERT(!q.next_due());
        q.release(res.job_id, 7000);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(7000), *q.next_due());
        auto again = q.claim_due(7000, 10, 7000, 0);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), again.due.size());
        q.write_results(std::vector<Outcome>{outcome(again.due[0], RcptState::deferred, 900000)});
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), q.flush(res.job_id, 8000));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(8000), *q.next_due());
        // Deleting a job with a pending recipient leaves no entry behind.
        q.remove_job(res.job_id);
        CPPUNIT_ASSERT(!q.next_due());
        CPPUNIT_ASSERT(q.claim_due(999999, 10, 999999, 0).due.empty());
    }

    void reopen_keeps_everything() {
        TempDir dir;
        std::uint64_t id;
        {
            QueueStore q(dir.path());
            id = add(q, intake("", {"a@x.test"}), 1000).job_id;
        }
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.job(id));
        CPPUNIT_ASSERT_EQUAL(std::uint64_t(1), q.job(id)->total());
        auto id2 = add(q, intake("", {"b@x.test"}), 1000).job_id;
        CPPUNIT_ASSERT(id2 > id);  // ids are not reused after a reopen
    }

    void suspensions() {
        TempDir dir;
        QueueStore q(dir.path());
        CPPUNIT_ASSERT(q.suspensions(1000).empty());
        q.suspend("Example.TEST", 5000, "421 4.7.28 slow down", 1000);
        q.suspend("mx:.google.com", QueueStore::kForever, "paused by hand", 1100);
        auto all = q.suspensions(2000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("example.test"), all[0].name);  // lower-cased, in name order
        CPPUNIT_ASSERT_EQUAL(std::int64_t(5000), all[0].until);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(1000), all[0].added);
        CPPUNIT_ASSERT_EQUAL(std::string("421 4.7.28 slow down"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), all[1].name);
        CPPUNIT_ASSERT_EQUAL(QueueStore::kForever, all[1].until);

        // Replacing: the later suspension holds, still one entry.
        q.suspend("EXAMPLE.test", 9000, "again", 3000);
        all = q.suspensions(3000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), all.size());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(9000), all[0].until);
        CPPUNIT_ASSERT_EQUAL(std::string("again"), all[0].reason);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(3000), all[0].added);

        // Expiry: left out at and after `until`, and deleted.
        all = q.suspensions(9000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("mx:.google.com"), all[0].name);
        CPPUNIT_ASSERT(!q.env().transact([&](DbTxn* txn) { return q.env().get(q.env().meta(), txn, "suspend:example.test"); }));
        // Other meta records are not suspensions.
        CPPUNIT_ASSERT(q.env().transact([&](DbTxn* txn) { return q.env().get(q.env().meta(), txn, "schema_version"); }));

        // Resume: true once, any case; false for none, and for one that ran out.
        CPPUNIT_ASSERT(q.resume("MX:.Google.com"));
        CPPUNIT_ASSERT(!q.resume("mx:.google.com"));
        CPPUNIT_ASSERT(!q.resume("never.test"));
        q.suspend("old.test", 1, "long ago", 0);
        CPPUNIT_ASSERT(!q.resume("old.test"));
        CPPUNIT_ASSERT(q.suspensions(0).empty());  // the resumed one is gone, even at an earlier time

        // A damaged record holds nothing back, and resume removes it.
        q.env().transact([&](DbTxn* txn) { q.env().put(q.env().meta(), txn, "suspend:damaged.test", "\x01"); });
        q.suspend("fine.test", 9000, "r", 1000);
        all = q.suspensions(2000);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("fine.test"), all[0].name);
        CPPUNIT_ASSERT(q.resume("damaged.test"));
        CPPUNIT_ASSERT(!q.env().transact([&](DbTxn* txn) { return q.env().get(q.env().meta(), txn, "suspend:damaged.test"); }));
    }

    void suspensions_survive_reopen() {
        TempDir dir;
        {
            QueueStore q(dir.path());
            q.suspend("shop.test", QueueStore::kForever, "paused by mxlanectl", 1000);
        }
        QueueStore q(dir.path());
        auto all = q.suspensions(now_ms());
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), all.size());
        CPPUNIT_ASSERT_EQUAL(std::string("shop.test"), all[0].name);
        CPPUNIT_ASSERT_EQUAL(std::string("paused by mxlanectl"), all[0].reason);
        CPPUNIT_ASSERT(q.resume("shop.test"));
    }

};

CPPUNIT_TEST_SUITE_REGISTRATION(StoreTest);
