// scan: cursor walks over the store's B-trees, shared by the queue_store source files.
#pragma once
#include <db_cxx.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "libshared/store/environment.hpp"
#include "libshared/store/records.hpp"

namespace mxlane::store::detail {

inline constexpr std::size_t kBatch = 1000;  // records per transaction in long walks

inline std::string str(const Dbt& d) { return std::string(static_cast<const char*>(d.get_data()), d.get_size()); }

// Closes a cursor on every path out of a scope.
struct CursorGuard {
    Dbc* c = nullptr;
    ~CursorGuard() {
        if (c) c->close();
    }
};

// Walks db from `start` while keys begin with `prefix`; f(key, data) returns false to stop.
template <class F>
void scan(Db& db, DbTxn* txn, const std::string& start, const std::string& prefix, F&& f) {
    CursorGuard g;
    db.cursor(txn, &g.c, 0);
    // DB_DBT_REALLOC lets the library grow the buffer to the key it finds, so the
    // start key goes in a malloc'd buffer of its own.
    void* buf = std::malloc(start.size() + 1);
    if (!buf) throw StoreError("out of memory");
    std::memcpy(buf, start.data(), start.size());
    Dbt key(buf, static_cast<u_int32_t>(start.size()));
    key.set_flags(DB_DBT_REALLOC);
    Dbt data;
    data.set_flags(DB_DBT_REALLOC);
    int rc = start.empty() ? g.c->get(&key, &data, DB_FIRST) : g.c->get(&key, &data, DB_SET_RANGE);
    while (rc == 0) {
        std::string k = str(key);
        if (k.compare(0, prefix.size(), prefix) != 0) break;
        if (!f(k, str(data))) break;
        rc = g.c->get(&key, &data, DB_NEXT);
    }
    std::free(key.get_data());
    std::free(data.get_data());
}

inline std::array<std::int64_t, kStateCount> no_delta() { return {}; }

// One recipient leaving state `from` for `to`, in a per-message counter delta.
inline void move_count(std::array<std::int64_t, kStateCount>& delta, RcptState from, RcptState to) {
    delta[static_cast<int>(from)]--;
    delta[static_cast<int>(to)]++;
}

}  // namespace mxlane::store::detail
