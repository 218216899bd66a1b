// queue_store_intake: a message's intake, and the group transaction concurrent intakes share.
//
// The milter stores each message durably before it answers, and the host MTA
// waits for that once per message. Committed one by one, ten concurrent intakes
// paid ten transactions' worth of Berkeley DB work (begin, locks, commit, the log
// flush's mutexes and wake-ups) although their flushes were shared. Here the
// first intake to arrive runs every intake waiting at that moment in one
// transaction, commits it and flushes the log; the threads of its group answer
// after that flush, and the intakes that arrived meanwhile are the next group.
// So a busy milter commits several messages per transaction, and an idle one
// exactly as before (a group of one). (Letting the next group write while this
// one flushes made nearly every group one message: the threads of a group come
// back only after its flush.)
//
// Even so, the intakes of a busy milter mostly arrive one by one, a flush apart,
// and each flush costs the host far more than the writes it makes durable: the
// kernel's work and the wake-ups of the host MTA's processes that wait on it. So
// when the caller has many intakes under way (Intake::concurrent, at least
// kGatherFrom: the milter's messages being received), the leader waits up to
// gather_wait_ (1 ms) for them to join before it runs its group, as a database's
// commit delay does: fewer, larger flushes, for up to a millisecond more per
// message (bench/README.md, 2026-12-04). With fewer under way a wait would mostly
// find nobody (with two sessions, capture ran a quarter slower), so it runs at once.
//
// The messages of a group take the databases in the lock order one after the
// other, so the group's transaction as a whole does not keep it: a deadlock with
// another transaction is retried as any is. A group's transaction that fails is
// tried once more as one transaction per intake, so that one message the store
// refuses (its text cannot be read, say) fails alone.
#include <algorithm>
#include <chrono>
#include <exception>

#include "libshared/store/queue_store.hpp"

namespace mxlane::store {

namespace {

constexpr unsigned kGatherFrom = 6;
constexpr std::size_t kGatherEnough = 16;  // a group this big runs at once

}  // namespace

struct QueueStore::PendingIntake {
    PendingIntake(const Intake& i, std::istream& t, std::int64_t n, std::uint64_t id)
        : in(i), text(t), start(t.tellg()), now(n), message_id(id) {}
    const Intake& in;
    std::istream& text;
    std::istream::pos_type start;  // where the text starts: a retried transaction reads it again
    std::int64_t now;
    std::uint64_t message_id;
    std::optional<IntakeResult> result;
    std::exception_ptr error;
    bool taken = false;  // in a group being run
    bool done = false;   // its group committed and flushed (or failed)
};

IntakeResult QueueStore::put_message(DbTxn* txn, PendingIntake& p) {
    const Intake& in = p.in;
    p.text.clear();
    if (p.start != std::istream::pos_type(-1)) p.text.seekg(p.start);
    bool created = false;
    Job job = find_or_create_job(txn, in, p.now, created);
    Message m;
    m.job_id = job.id;
    m.id = p.message_id;
    m.sender = in.sender;
    m.host_queue_id = in.host_queue_id;
    m.mail_params = in.mail_params;
    m.pool = in.pool;
    m.field_names = in.field_names;
    m.personalised = in.personalised;
    m.eight_bit = in.eight_bit;
    m.smtputf8 = in.smtputf8;
    m.created = p.now;
    store_text(txn, m, p.text);
    env_->put(env_->messages(), txn, message_key(job.id, m.id), m.encode());
    // A message as the milter stores it is packed (its commit is what the host
    // MTA waits for); a big submission is written out at once, in batches.
    if (!in.recipients.empty() && in.recipients.size() <= kPackedMax)
        pack_recipients(txn, job.id, m.id, in.recipients, p.now);
    else
        insert_recipients(txn, job.id, m.id, in.recipients, p.now, true);
    return IntakeResult{job.id, m.id, in.recipients.size(), created};
}

void QueueStore::store_group(std::span<PendingIntake* const> group) {
    ++intake_groups_;
    try {
        auto results = env_->transact([&](DbTxn* txn) {
            std::vector<IntakeResult> r;
            r.reserve(group.size());
            for (auto* p : group) r.push_back(put_message(txn, *p));
            return r;
        }, Commit::write_nosync);
        for (std::size_t i = 0; i < group.size(); ++i) group[i]->result = results[i];
        return;
    } catch (const std::exception& e) {
        // A panicked store fails every intake alike, and a group of one has nothing to retry.
        if (group.size() == 1 || dynamic_cast<const StorePanic*>(&e)) {
            for (auto* p : group) p->error = std::current_exception();
            return;
        }
    }
    for (auto* p : group) {
        try {
            p->result = env_->transact([&](DbTxn* txn) { return put_message(txn, *p); }, Commit::write_nosync);
        } catch (const std::exception&) {
            p->error = std::current_exception();
        }
    }
}

IntakeResult QueueStore::add_message(const Intake& in, std::istream& text, std::int64_t now) {
    PendingIntake self(in, text, now, env_->next_message_id());
    std::vector<PendingIntake*> group;
    {
        std::unique_lock lock(group_mu_);
        group_waiting_.push_back(&self);
        group_arrived_.notify_one();
        group_done_.wait(lock, [&] { return self.taken || !group_running_; });
        if (!self.taken && in.concurrent >= kGatherFrom) {
            // Gather: the intakes under way join this group as they arrive.
            group_running_ = true;
            std::size_t enough = std::min<std::size_t>(in.concurrent, kGatherEnough);
            group_arrived_.wait_until(lock, std::chrono::steady_clock::now() + gather_wait_,
                                      [&] { return group_waiting_.size() >= enough; });
        }
        if (!self.taken) {
            // This thread runs the group: every intake waiting now, its own among them.
            group_running_ = true;
            group.swap(group_waiting_);
            for (auto* p : group) p->taken = true;
        }
    }
    if (!group.empty()) {
        store_group(group);
        std::exception_ptr flush_error;
        try {
            env_->flush_log();
        } catch (const std::exception&) {
            flush_error = std::current_exception();  // committed, maybe not on the disk: a failure
        }
        {
            std::lock_guard lock(group_mu_);
            group_running_ = false;
            for (auto* p : group) {
                if (flush_error && !p->error) p->error = flush_error;
                p->done = true;
            }
        }
        group_done_.notify_all();
    }
    {
        // Until its group is flushed (when another thread runs it).
        std::unique_lock lock(group_mu_);
        group_done_.wait(lock, [&] { return self.done; });
    }
    if (self.error) std::rethrow_exception(self.error);
    if (in.open_ms > 0) note_intake(self.result->job_id, now);
    env_->maybe_checkpoint();
    return *self.result;
}

void QueueStore::hold_intake_groups_for_test(bool hold) {
    {
        std::lock_guard lock(group_mu_);
        group_running_ = hold;
    }
    group_done_.notify_all();
}

std::size_t QueueStore::intakes_waiting_for_test() {
    std::lock_guard lock(group_mu_);
    return group_waiting_.size();
}

}  // namespace mxlane::store
