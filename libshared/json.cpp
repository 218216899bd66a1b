// json: the JSON documents mxlane writes, built with Boost.JSON and always valid UTF-8.
#include "libshared/json.hpp"

// Boost.JSON header-only: its implementation is compiled here, once for the whole program.
// GCC 12 under -fsanitize=address reports a false -Warray-bounds in its array::relocate
// and -Wstringop-overflow (memmove of zero elements), which -Werror would make fatal.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <boost/json/src.hpp>
#pragma GCC diagnostic pop

#include "libshared/printable.hpp"

namespace mxlane::json {
namespace {

bool needs_repair(boost::json::string_view s) { return !is_valid_utf8(s); }

boost::json::string repaired(boost::json::string_view s) { return boost::json::string(valid_utf8(s)); }

void repair(value& v) {
    if (auto* s = v.if_string()) {
        if (needs_repair(*s)) *s = repaired(*s);
    } else if (auto* a = v.if_array()) {
        for (auto& e : *a) repair(e);
    } else if (auto* o = v.if_object()) {
        bool bad_key = false;
        for (auto& kv : *o) {
            repair(kv.value());
            bad_key = bad_key || needs_repair(kv.key());
        }
        if (bad_key) {  // keys cannot change in place: build the object again
            object fixed;
            for (auto& kv : *o) fixed[repaired(kv.key())] = std::move(kv.value());
            *o = std::move(fixed);
        }
    }
}

}  // namespace

std::string serialize(value doc) {
    repair(doc);
    return boost::json::serialize(doc);
}

}  // namespace mxlane::json
