// suppress_cmd: mxlanectl suppress list | add ADDR... | remove ADDR... (the never-send list).
#include <iostream>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "libshared/printable.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

int list(Context& c) {
    c.no_more_args(1);
    auto all = c.store().suppressions();
    if (c.json) {
        json::array list;
        for (const auto& s : all)
            {
            json::object row{{"address", s.address}, {"reason", s.reason}, {"added", iso_time(s.added)}};
            if (s.job) row["job"] = store::format_job_id(s.job);
            else row["job"] = nullptr;
            list.push_back(std::move(row));
        }
        std::cout << json::serialize(std::move(list)) << "\n";
        return 0;
    }
    if (all.empty()) {
        std::cout << "Suppression list is empty\n";
        return 0;
    }
    Table t({"ADDRESS", "ADDED", "REASON", "JOB"});
    for (const auto& s : all)
        t.add({s.address, iso_time(s.added), s.reason.empty() ? "-" : s.reason,
               s.job ? store::format_job_id(s.job) : "-"});
    std::cout << t.str();
    return 0;
}

// add or remove each address given; prints what changed.
int change(Context& c, bool add) {
    if (c.args.size() < 2) throw UsageError(std::string("suppress ") + (add ? "add" : "remove") + " needs an address");
    for (std::size_t i = 1; i < c.args.size(); ++i)
        if (!valid_address(strip_brackets(c.args[i]))) throw UsageError("not an address: " + c.args[i]);
    json::array list;
    for (std::size_t i = 1; i < c.args.size(); ++i) {
        std::string a = to_lower(strip_brackets(c.args[i]));
        bool changed = add ? c.store().suppress(a, "manual", store::now_ms()) : c.store().unsuppress(a);
        std::string what = changed ? (add ? "added" : "removed") : (add ? "already listed" : "not listed");
        list.push_back(json::object{{"address", a}, {"result", what}});
        if (!c.json) std::cout << printable(a) << ": " << what << "\n";
    }
    if (c.json) std::cout << json::serialize(std::move(list)) << "\n";
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
