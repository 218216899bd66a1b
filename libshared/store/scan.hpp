// scan: cursor walks over the store's B-trees, shared by the queue_store source files.
#pragma once
#include <db_cxx.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "libshared/store/environment.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::store::detail {

inline constexpr std::size_t kBatch = 1000;  // records per transaction in long walks

inline std::string str(const Dbt& d) {
    return d.get_size() ? std::string(static_cast<const char*>(d.get_data()), d.get_size()) : std::string();
}

// Closes a cursor on every path out of a scope, an exception's included: the
// close of a cursor whose transaction failed may throw, and a destructor must not.
struct CursorGuard {
    Dbc* c = nullptr;
    CursorGuard() = default;
    CursorGuard(const CursorGuard&) = delete;
    CursorGuard& operator=(const CursorGuard&) = delete;
    ~CursorGuard() noexcept {
        if (!c) return;
        try {
            c->close();
        } catch (const DbException&) {
            // The transaction is aborted anyway; the error that led here is the one to report.
        }
    }
};

// A Dbt whose buffer the library (re)allocates to fit each record (DB_DBT_REALLOC),
// freed on every path out of the scope, a retried deadlock's included.
struct OwnedDbt : Dbt {
    OwnedDbt() { set_flags(DB_DBT_REALLOC); }
    // Starts out holding a copy of `init` (a search key), in a malloc'd buffer the library may grow.
    explicit OwnedDbt(const std::string& init) : OwnedDbt() {
        void* buf = std::malloc(init.size() + 1);
        if (!buf) throw std::bad_alloc();
        std::memcpy(buf, init.data(), init.size());
        set_data(buf);
        set_size(static_cast<u_int32_t>(init.size()));
    }
    OwnedDbt(const OwnedDbt&) = delete;
    OwnedDbt& operator=(const OwnedDbt&) = delete;
    ~OwnedDbt() { std::free(get_data()); }
};

// Walks db from `start` while keys begin with `prefix`; f(key, data) returns false to stop.
// flags: DB_RMW when the caller writes what it reads, DB_READ_COMMITTED to keep no read locks.
template <class F>
void scan(Db& db, DbTxn* txn, const std::string& start, const std::string& prefix, F&& f,
          std::uint32_t flags = 0) {
    CursorGuard g;
    db.cursor(txn, &g.c, flags & DB_READ_COMMITTED);
    const std::uint32_t get_flags = flags & DB_RMW;
    OwnedDbt key(start), data;
    int rc = start.empty() ? g.c->get(&key, &data, DB_FIRST | get_flags) : g.c->get(&key, &data, DB_SET_RANGE | get_flags);
    while (rc == 0) {
        std::string k = str(key);
        if (k.compare(0, prefix.size(), prefix) != 0) break;
        if (!f(k, str(data))) break;
        rc = g.c->get(&key, &data, DB_NEXT | get_flags);
    }
}

inline std::array<std::int64_t, kStateCount> no_delta() { return {}; }

// One recipient leaving state `from` for `to`, in a per-message counter delta.
inline void move_count(std::array<std::int64_t, kStateCount>& delta, RcptState from, RcptState to) {
    delta[static_cast<int>(from)]--;
    delta[static_cast<int>(to)]++;
}

}  // namespace mxlane::store::detail
