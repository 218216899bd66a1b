// environment: the Berkeley DB environment in queue_directory, its databases, and retried transactions.
#pragma once
#include <db_cxx.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <stdexcept>
#include <string>

namespace mxlane::store {

// Any store failure the caller cannot fix by retrying now: the milter answers
// tempfail, the qrunner logs and tries again later, mxlanectl prints it.
// transient(): the same call may well succeed a little later (lock contention
// that outlasted the retries, a full disk, memory); otherwise the request itself
// cannot be done (e.g. a damaged record) and retrying it will not help.
class StoreError : public std::runtime_error {
public:
    explicit StoreError(const std::string& what, bool transient = false)
        : std::runtime_error(what), transient_(transient) {}
    bool transient() const { return transient_; }

private:
    bool transient_;
};

// Berkeley DB reported DB_RUNRECOVERY: the environment is panicked and every
// later call on it fails. Only a new process (recovery runs at its open) can
// use the store again; a daemon calls fatal_if_panic() in its handlers and
// exits, and its supervisor restarts it.
class StorePanic : public StoreError {
public:
    using StoreError::StoreError;
};

// When e is a StorePanic: logs one "fatal:" line saying so and exits the
// process (status 1). Otherwise returns. For every catch block of a daemon
// that catches store errors and would otherwise carry on.
void fatal_if_panic(const std::exception& e);

// How a transaction's commit reaches the disk.
enum class Commit {
    sync,          // written and flushed to the disk before transact returns (intake: the 250 depends on it)
    write_nosync,  // written to the OS at commit (survives a crash of the process), flushed to the disk
                   // by the environment's flush thread within a second (what a machine crash can cost)
};

// Lock order. Berkeley DB locks B-tree pages until commit, so two transactions
// that take the same databases in opposite orders deadlock (one is aborted and
// retried). Every transaction takes the databases in this order, as far as its
// logic allows:
//
//   job_names -> jobs -> bodies -> messages -> packed -> recipients -> suppressed -> suppressed_log -> inflight -> due -> counts
//
// claim_due reads the due index first without keeping locks (read committed),
// then takes jobs (shared), recipients, suppressed, inflight (marks put with
// DB_NOOVERWRITE: a mark already there is another claim's), due, counts.
// write_results takes jobs (shared), recipients, suppressed, inflight (whether
// each was in flight), then due only for a recipient that goes back in the
// index or was not in flight, then counts: a result does not wait for the due
// index pages a claim holds. Known exceptions, each rare: write_results
// write-locks a job record it already read when the job finishes; an intake
// write-locks a named job it read when the job was done and takes mail again;
// add_recipients (submission into an incoming job) reads counts first for the
// next recipient index; recover_inflight (at start) walks inflight first.
// Reads of a record the same transaction later writes use DB_RMW (a write lock
// at once, no upgrade).

constexpr int kSchemaVersion = 1;

// The log: its in-memory buffer, and the size of one log file. Log files are
// zero-filled when created, so a new one takes its space on the disk at once:
// kLogFileSpace (the file and a buffer's worth beyond it).
constexpr std::uint64_t kLogBufferBytes = 4ULL * 1024 * 1024;
constexpr std::uint64_t kLogFileMax = 32ULL * 1024 * 1024;
constexpr std::uint64_t kLogFileSpace = kLogFileMax + kLogBufferBytes;

class Environment {
public:
    // Opens (creating when missing) the environment and every database. Runs
    // recovery when another process died while holding it (DB_REGISTER).
    explicit Environment(const std::string& dir);
    ~Environment();
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;

    const std::string& dir() const { return dir_; }

    Db& meta() { return *meta_; }          // schema version, id sequences
    Db& jobs() { return *jobs_; }          // job id -> Job
    Db& job_names() { return *job_names_; }  // bulk job name -> job id
    Db& messages() { return *messages_; }  // job id + message id -> Message
    Db& bodies() { return *bodies_; }      // message id + chunk -> text
    Db& counts() { return *counts_; }      // job id + message id -> MessageCounts
    Db& packed() { return *packed_; }      // job id + message id -> a message's recipients not yet expanded
    Db& recipients() { return *recipients_; }  // job id + seq -> Recipient
    Db& due() { return *due_; }            // next_attempt + job + seq -> recipient key: pending, not in flight
    Db& inflight() { return *inflight_; }  // recipient key -> claim time: handed to delivery
    Db& suppressed() { return *suppressed_; }  // address -> time + reason
    Db& suppressed_log() { return *suppressed_log_; }  // change number -> "+address\nreason" / "-address"

    // Runs f(txn) in a transaction, committing durably; on deadlock aborts and
    // retries (bounded). f must only touch the store and local state, since it
    // may run more than once.
    // commit: see Commit; intake commits sync, delivery results write_nosync.
    template <class F>
    auto transact(F&& f, Commit commit = Commit::sync) -> decltype(f(static_cast<DbTxn*>(nullptr)));

    // Flushes the log to the disk up to its end: Berkeley DB's group commit. A commit
    // that waited for its own fdatasync would hold its page locks through it, and the
    // intakes of one campaign (which write neighbouring keys) would take turns at the
    // disk; flushed after the commit, the locks are free while the disk writes, and the
    // threads that reach the flush together share one. Throws StoreError when the flush
    // fails: the transaction is then committed but maybe not on the disk, and the
    // caller answers as for any failure (the milter: tempfail; a retry may store the
    // message twice, never lose it).
    void flush_log();

    // Asks the checkpoint thread for a checkpoint when many commits went by (it
    // also writes one every 30 s); logs no longer needed are then removed.
    void maybe_checkpoint();

    // Reads one record (nullopt when absent) / writes / deletes within txn.
    std::optional<std::string> get(Db& db, DbTxn* txn, const std::string& key, std::uint32_t flags = 0);
    void put(Db& db, DbTxn* txn, const std::string& key, const std::string& value);
    bool del(Db& db, DbTxn* txn, const std::string& key);

    // Next job or message id. Taken outside any transaction from a cached
    // sequence, so concurrent intakes do not queue behind one counter (a crash
    // leaves gaps, which is harmless).
    std::uint64_t next_job_id() { return next_from(*job_seq_); }
    std::uint64_t next_message_id() { return next_from(*msg_seq_); }

    // Records written or deleted through put() and del() since open (what a
    // transaction costs in B-tree writes; tests and bench/README.md's figures).
    std::uint64_t writes() const { return writes_.load(); }
    // Transactions aborted for a deadlock (or a lock not granted) and retried, since open.
    std::uint64_t deadlocks() const { return deadlocks_.load(); }
    // Every lock conflict fails at once, as a deadlock would, instead of waiting
    // (tests force contention with it).
    void set_lock_nowait(bool nowait) { nowait_ = nowait; }
    // How often transact() tries a transaction that deadlocks (50; tests lower it).
    void set_max_attempts(int n) { max_attempts_ = n; }
    // Marks the environment panicked, as Berkeley DB does after a fatal error (tests).
    void panic_for_test();
    bool panicked() const { return panicked_.load(); }
    // How long a write_nosync commit may wait for its flush to the disk.
    static constexpr std::chrono::milliseconds kLogFlushInterval{1000};

private:
    std::unique_ptr<Db> open_db(const char* file, std::uint32_t extra_flags = 0);
    std::unique_ptr<DbSequence> open_sequence(const char* name);
    std::uint64_t next_from(DbSequence& seq);
    void check_schema();
    [[noreturn]] void retries_exhausted();
    [[noreturn]] void failed(const DbException& e);
    void backoff(int attempt);
    static void abort_quietly(DbTxn* txn) noexcept;

    std::string dir_;
    DbEnv env_{0u};
    std::unique_ptr<Db> meta_, jobs_, job_names_, messages_, bodies_, counts_, packed_, recipients_, due_,
        inflight_, suppressed_, suppressed_log_;
    std::unique_ptr<DbSequence> job_seq_, msg_seq_;
    std::atomic<unsigned> commits_{0};
    std::atomic<std::uint64_t> deadlocks_{0};
    std::atomic<std::uint64_t> writes_{0};
    std::atomic<bool> panicked_{false};
    std::atomic<int> max_attempts_{50};
    std::atomic<bool> nowait_{false};

    void checkpoint_loop();
    std::thread checkpointer_;
    std::mutex checkpoint_mu_;
    std::condition_variable checkpoint_wake_;
    bool stopping_ = false;
    bool checkpoint_wanted_ = false;

};

template <class F>
auto Environment::transact(F&& f, Commit commit) -> decltype(f(static_cast<DbTxn*>(nullptr))) {
    // Every commit is written to the OS at once; a sync one is then flushed by
    // flush_log(), after the transaction has let go of its locks (see there).
    const std::uint32_t commit_flags = DB_TXN_WRITE_NOSYNC;
    for (int attempt = 0; attempt < max_attempts_; ++attempt) {
        if (panicked_) throw StorePanic("queue store in " + dir_ + " needs recovery (DB_RUNRECOVERY)");
        DbTxn* txn = nullptr;
        try {
            env_.txn_begin(nullptr, &txn, nowait_ ? DB_TXN_NOWAIT : 0);
            if constexpr (std::is_void_v<decltype(f(txn))>) {
                f(txn);
                DbTxn* t = txn;
                txn = nullptr;
                t->commit(commit_flags);
                ++commits_;
                if (commit == Commit::sync) flush_log();
                return;
            } else {
                auto result = f(txn);
                DbTxn* t = txn;
                txn = nullptr;
                t->commit(commit_flags);
                ++commits_;
                if (commit == Commit::sync) flush_log();
                return result;
            }
        } catch (const DbDeadlockException&) {
            abort_quietly(txn);
            ++deadlocks_;
            backoff(attempt);
        } catch (const DbLockNotGrantedException&) {
            abort_quietly(txn);
            ++deadlocks_;
            backoff(attempt);
        } catch (const DbException& e) {
            abort_quietly(txn);
            failed(e);
        } catch (...) {
            abort_quietly(txn);
            throw;
        }
    }
    retries_exhausted();
}

}  // namespace mxlane::store
