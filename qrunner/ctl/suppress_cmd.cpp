// suppress_cmd: mxlanectl suppress list | add ADDR... | remove ADDR... (the never-send list).
#include <iostream>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

int list(Context& c) {
    c.no_more_args(1);
    auto all = c.store().suppressions();
    if (c.json) {
        JsonWriter j;
        j.begin_array();
        for (const auto& s : all)
            j.begin_object().key("address").value(s.address).key("reason").value(s.reason)
                .key("added").value(iso_time(s.added)).end_object();
        j.end_array();
        std::cout << j.str() << "\n";
        return 0;
    }
    if (all.empty()) {
        std::cout << "Suppression list is empty\n";
        return 0;
    }
    Table t({"ADDRESS", "ADDED", "REASON"});
    for (const auto& s : all) t.add({s.address, iso_time(s.added), s.reason.empty() ? "-" : s.reason});
    std::cout << t.str();
    return 0;
}

// add or remove each address given; prints what changed.
int change(Context& c, bool add) {
    if (c.args.size() < 2) throw UsageError(std::string("suppress ") + (add ? "add" : "remove") + " needs an address");
    for (std::size_t i = 1; i < c.args.size(); ++i)
        if (!valid_address(strip_brackets(c.args[i]))) throw UsageError("not an address: " + c.args[i]);
    JsonWriter j;
    j.begin_array();
    for (std::size_t i = 1; i < c.args.size(); ++i) {
        std::string a = to_lower(strip_brackets(c.args[i]));
        bool changed = add ? c.store().suppress(a, "added by mxlanectl", store::now_ms()) : c.store().unsuppress(a);
        std::string what = changed ? (add ? "added" : "removed") : (add ? "already listed" : "not listed");
        j.begin_object().key("address").value(a).key("result").value(what).end_object();
        if (!c.json) std::cout << a << ": " << what << "\n";
    }
    j.end_array();
    if (c.json) std::cout << j.str() << "\n";
    return 0;
}

}  // namespace

int cmd_suppress(Context& c) {
    std::string verb = c.args.empty() ? "" : c.args[0];
    if (verb == "list") return list(c);
    if (verb == "add") return change(c, true);
    if (verb == "remove") return change(c, false);
    throw UsageError("suppress needs list, add ADDR or remove ADDR");
}

}  // namespace mxlane::ctl
