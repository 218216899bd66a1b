// environment: the Berkeley DB environment in queue_directory, its databases, and retried transactions.
#pragma once
#include <db_cxx.h>

#include <atomic>
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
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

constexpr int kSchemaVersion = 1;

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
    Db& recipients() { return *recipients_; }  // job id + seq -> Recipient
    Db& due() { return *due_; }            // next_attempt + job + seq -> recipient key: pending, not in flight
    Db& inflight() { return *inflight_; }  // recipient key -> claim time: handed to delivery
    Db& suppressed() { return *suppressed_; }  // address -> time + reason

    // Runs f(txn) in a transaction, committing durably; on deadlock aborts and
    // retries (bounded). f must only touch the store and local state, since it
    // may run more than once.
    template <class F>
    auto transact(F&& f) -> decltype(f(static_cast<DbTxn*>(nullptr)));

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

private:
    std::unique_ptr<Db> open_db(const char* file, std::uint32_t extra_flags = 0);
    std::unique_ptr<DbSequence> open_sequence(const char* name);
    std::uint64_t next_from(DbSequence& seq);
    void check_schema();
    [[noreturn]] void retries_exhausted();
    void backoff(int attempt);

    std::string dir_;
    DbEnv env_{0u};
    std::unique_ptr<Db> meta_, jobs_, job_names_, messages_, bodies_, counts_, recipients_, due_,
        inflight_, suppressed_;
    std::unique_ptr<DbSequence> job_seq_, msg_seq_;
    std::atomic<unsigned> commits_{0};

    void checkpoint_loop();
    std::thread checkpointer_;
    std::mutex checkpoint_mu_;
    std::condition_variable checkpoint_wake_;
    bool stopping_ = false;
    bool checkpoint_wanted_ = false;
};

template <class F>
auto Environment::transact(F&& f) -> decltype(f(static_cast<DbTxn*>(nullptr))) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        DbTxn* txn = nullptr;
        try {
            env_.txn_begin(nullptr, &txn, 0);
            if constexpr (std::is_void_v<decltype(f(txn))>) {
                f(txn);
                DbTxn* t = txn;
                txn = nullptr;
                t->commit(0);
                ++commits_;
                return;
            } else {
                auto result = f(txn);
                DbTxn* t = txn;
                txn = nullptr;
                t->commit(0);
                ++commits_;
                return result;
            }
        } catch (const DbDeadlockException&) {
            if (txn) txn->abort();
            backoff(attempt);
        } catch (const DbLockNotGrantedException&) {
            if (txn) txn->abort();
            backoff(attempt);
        } catch (const DbException& e) {
            if (txn) txn->abort();
            throw StoreError(std::string("queue store: ") + e.what());
        } catch (...) {
            if (txn) txn->abort();
            throw;
        }
    }
    retries_exhausted();
}

}  // namespace mxlane::store
