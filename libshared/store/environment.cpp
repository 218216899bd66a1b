// environment: the Berkeley DB environment in queue_directory, its databases, and retried transactions.
#include "libshared/store/environment.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "libshared/log.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/records.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {
namespace {

void make_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
        throw StoreError("cannot create queue_directory " + dir + ": " + std::strerror(errno));
}

// Errors that say nothing about the request itself: the same call may succeed later.
bool transient_errno(int e) {
    return e == ENOSPC || e == ENOMEM || e == EAGAIN || e == EIO || e == EBUSY || e == EINTR ||
           e == DB_LOCK_DEADLOCK || e == DB_LOCK_NOTGRANTED;
}

}  // namespace

void fatal_if_panic(const std::exception& e) {
    if (!dynamic_cast<const StorePanic*>(&e)) return;
    // Called from worker threads too: _Exit runs no destructors (nothing may
    // touch the broken environment any more), and the log line is written
    // with write(2), unbuffered. The next start runs recovery (DB_REGISTER).
    log::error(std::string("fatal: ") + e.what() + "; exiting so that a restart runs recovery");
    std::_Exit(1);
}

Environment::Environment(const std::string& dir) : dir_(dir) {
    try {
        make_dir(dir_);
        env_.set_error_stream(nullptr);
        env_.set_cachesize(0, 64 * 1024 * 1024, 1);
        env_.set_lg_bsize(kLogBufferBytes);
        env_.set_lg_max(kLogFileMax);
        env_.set_lk_max_locks(500000);
        env_.set_lk_max_objects(500000);
        env_.set_lk_max_lockers(20000);
        env_.set_tx_max(2000);
        env_.set_lk_detect(DB_LOCK_DEFAULT);
        env_.log_set_config(DB_LOG_AUTO_REMOVE, 1);
        // Each log file is zero-filled when it is created, so that a commit's flush
        // writes into blocks the file already has and changes no file system metadata:
        // the file system then need not commit its journal for every flush, and a
        // capture cost the host measurably less (bench/README.md, 2026-12-04). The price
        // is a pause of a few milliseconds for the commit that starts a new file.
        env_.log_set_config(DB_LOG_ZERO, 1);
        // DB_REGISTER + DB_RECOVER: the first process to open after a crash runs
        // recovery while the others wait; with no crash the flag is a no-op.
        env_.open(dir_.c_str(),
                  DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN | DB_THREAD |
                      DB_REGISTER | DB_RECOVER,
                  0660);
        meta_ = open_db("meta.db");
        jobs_ = open_db("jobs.db");
        job_names_ = open_db("job_names.db");
        messages_ = open_db("messages.db");
        bodies_ = open_db("bodies.db");
        counts_ = open_db("counts.db");
        packed_ = open_db("packed.db");
        recipients_ = open_db("recipients.db");
        due_ = open_db("due.db");
        inflight_ = open_db("inflight.db");
        suppressed_ = open_db("suppressed.db");
        suppressed_log_ = open_db("suppressed_log.db");
        check_schema();
        job_seq_ = open_sequence("seq:job");
        msg_seq_ = open_sequence("seq:message");
        // The thread takes no signals: a daemon's own signal handling (libmilter
        // sigwait()s in one thread with signals blocked in the others) must get them.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        try {
            checkpointer_ = std::thread([this] { checkpoint_loop(); });
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    } catch (const DbException& e) {
        if (e.get_errno() == DB_RUNRECOVERY)
            throw StorePanic("cannot open the queue store in " + dir_ + ": " + e.what());
        throw StoreError("cannot open the queue store in " + dir_ + ": " + e.what(), transient_errno(e.get_errno()));
    }
}

Environment::~Environment() {
    if (checkpointer_.joinable()) {
        {
            std::lock_guard lock(checkpoint_mu_);
            stopping_ = true;
        }
        checkpoint_wake_.notify_one();
        checkpointer_.join();
    }
    // Secondary before primary; errors at close have nowhere useful to go.
    for (auto* seq : {job_seq_.get(), msg_seq_.get()}) {
        if (!seq) continue;
        try {
            seq->close(0);
        } catch (const DbException&) {
        }
    }
    for (auto* db : {due_.get(), recipients_.get(), packed_.get(), suppressed_log_.get(), suppressed_.get(), inflight_.get(), counts_.get(),
                     bodies_.get(), messages_.get(), job_names_.get(), jobs_.get(), meta_.get()}) {
        if (!db) continue;
        try {
            db->close(0);
        } catch (const DbException&) {
        }
    }
    try {
        env_.close(0);
    } catch (const DbException&) {
    }
}

std::unique_ptr<Db> Environment::open_db(const char* file, std::uint32_t extra_flags) {
    auto db = std::make_unique<Db>(&env_, 0);
    if (extra_flags) db->set_flags(extra_flags);
    db->open(nullptr, file, nullptr, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0660);
    return db;
}

void Environment::check_schema() {
    transact([&](DbTxn* txn) {
        auto v = get(*meta_, txn, "schema_version", DB_RMW);
        if (!v) {
            put(*meta_, txn, "schema_version", std::to_string(kSchemaVersion));
            return;
        }
        if (*v != std::to_string(kSchemaVersion))
            throw StoreError("queue store in " + dir_ + " has schema version " + *v +
                             ", this mxlane reads version " + std::to_string(kSchemaVersion));
    });
}

std::optional<std::string> Environment::get(Db& db, DbTxn* txn, const std::string& key,
                                             std::uint32_t flags) {
    Dbt k(const_cast<char*>(key.data()), static_cast<u_int32_t>(key.size()));
    detail::OwnedDbt d;
    int rc = db.get(txn, &k, &d, flags);
    if (rc == DB_NOTFOUND || rc == DB_KEYEMPTY) return std::nullopt;
    return detail::str(d);
}

void Environment::put(Db& db, DbTxn* txn, const std::string& key, const std::string& value) {
    Dbt k(const_cast<char*>(key.data()), static_cast<u_int32_t>(key.size()));
    Dbt d(const_cast<char*>(value.data()), static_cast<u_int32_t>(value.size()));
    db.put(txn, &k, &d, 0);
    ++writes_;
}

bool Environment::del(Db& db, DbTxn* txn, const std::string& key) {
    Dbt k(const_cast<char*>(key.data()), static_cast<u_int32_t>(key.size()));
    ++writes_;
    return db.del(txn, &k, 0) == 0;
}

std::unique_ptr<DbSequence> Environment::open_sequence(const char* name) {
    // Two processes opening a new store at once may both try to create the
    // sequence record; the loser sees DB_KEYEXIST (or a deadlock) and simply
    // opens the record the winner made.
    for (int attempt = 0;; ++attempt) {
        auto seq = std::make_unique<DbSequence>(meta_.get(), 0);
        try {
            seq->initial_value(1);
            seq->set_cachesize(64);
            Dbt key(const_cast<char*>(name), static_cast<u_int32_t>(std::strlen(name)));
            seq->open(nullptr, &key, DB_CREATE | DB_THREAD);
            return seq;
        } catch (const DbException& e) {
            // close() frees the C handle and clears the wrapper's pointer to it,
            // so the wrapper's own destructor (when seq goes) closes nothing twice.
            try {
                seq->close(0);
            } catch (const DbException&) {
            }
            if (attempt >= 20) throw;
            backoff(attempt);
        }
    }
}

std::uint64_t Environment::next_from(DbSequence& seq) {
    try {
        db_seq_t v = 0;
        seq.get(nullptr, 1, &v, 0);
        return static_cast<std::uint64_t>(v);
    } catch (const DbException& e) {
        throw StoreError(std::string("queue store: cannot take an id: ") + e.what());
    }
}

void Environment::maybe_checkpoint() {
    if (commits_.load() < 2000) return;
    commits_ = 0;
    {
        std::lock_guard lock(checkpoint_mu_);
        checkpoint_wanted_ = true;
    }
    checkpoint_wake_.notify_one();
}

// A checkpoint flushes dirty pages to the data files, which can take a while;
// it runs here, beside the transactions, so that no caller waits for it. Every
// kLogFlushInterval the log goes to the disk, which makes write_nosync commits
// durable against a machine crash too.
void Environment::checkpoint_loop() {
    using Clock = std::chrono::steady_clock;
    std::unique_lock lock(checkpoint_mu_);
    auto next_checkpoint = Clock::now() + std::chrono::seconds(30);
    while (!stopping_) {
        checkpoint_wake_.wait_for(lock, kLogFlushInterval, [&] { return stopping_ || checkpoint_wanted_; });
        if (stopping_) break;
        const bool checkpoint = checkpoint_wanted_ || Clock::now() >= next_checkpoint;
        checkpoint_wanted_ = false;
        lock.unlock();
        try {
            env_.log_flush(nullptr);
            if (checkpoint) {
                env_.txn_checkpoint(4096, 1, 0);  // at least 4 MB of log or a minute since the last one
                next_checkpoint = Clock::now() + std::chrono::seconds(30);
            }
        } catch (const DbException& e) {
            // A failed flush or checkpoint is tried again at the next tick; a panic
            // is noted so that the next transaction reports it.
            if (e.get_errno() == DB_RUNRECOVERY) panicked_ = true;
        }
        lock.lock();
    }
    // The last write_nosync commits reach the disk before the environment closes.
    lock.unlock();
    try {
        env_.log_flush(nullptr);
    } catch (const DbException&) {
    }
}

void Environment::backoff(int attempt) {
    thread_local std::minstd_rand rng(std::random_device{}());
    int ms = std::min(50, 1 + attempt * 2);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (ms * 1000 + 1)));
}

void Environment::retries_exhausted() {
    throw StoreError("queue store in " + dir_ + ": transaction kept deadlocking, gave up", true);
}

void Environment::flush_log() {
    try {
        env_.log_flush(nullptr);
    } catch (const DbException& e) {
        failed(e);
    }
}

void Environment::failed(const DbException& e) {
    if (e.get_errno() == DB_RUNRECOVERY || dynamic_cast<const DbRunRecoveryException*>(&e)) {
        panicked_ = true;
        throw StorePanic("queue store in " + dir_ + " needs recovery: " + e.what());
    }
    throw StoreError(std::string("queue store: ") + e.what(), transient_errno(e.get_errno()));
}

void Environment::abort_quietly(DbTxn* txn) noexcept {
    if (!txn) return;
    try {
        txn->abort();
    } catch (const DbException&) {
        // Only a panicked environment fails an abort; the caller's error says so.
    }
}

void Environment::panic_for_test() {
    try {
        env_.set_flags(DB_PANIC_ENVIRONMENT, 1);
    } catch (const DbException&) {
    }
}

}  // namespace mxlane::store
