// export_cmd: mxlanectl export ID [--state S] -> CSV of recipients with their results, suppression and fields.
#include <iostream>
#include <map>
#include <unordered_map>

#include "libshared/csv.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/progress.hpp"

namespace mxlane::ctl {
namespace {

using store::Recipient;

// Columns after the fixed ones: every field name of the job's messages, in order of
// first appearance; for each message, where each of its fields goes.
struct FieldColumns {
    std::vector<std::string> names;
    std::map<std::uint64_t, std::vector<std::size_t>> by_message;
};

FieldColumns field_columns(const std::vector<store::Message>& messages) {
    FieldColumns fc;
    std::unordered_map<std::string, std::size_t> column_of;
    for (const auto& m : messages) {
        auto& where = fc.by_message[m.id];
        for (const auto& name : m.field_names) {
            auto [it, added] = column_of.try_emplace(name, fc.names.size());
            if (added) fc.names.push_back(name);
            where.push_back(it->second);
        }
    }
    return fc;
}

std::vector<std::string> row(const Recipient& r, const FieldColumns& fc, const std::string& suppression) {
    std::vector<std::string> out = {r.address, std::string(store::state_name(r.state)), std::to_string(r.attempts),
                                    r.reply_text, r.dsn, r.host, std::string(store::failure_class(r)), suppression};
    out.resize(kExportColumns.size() + fc.names.size());
    const auto& where = fc.by_message.at(r.message_id);
    for (std::size_t i = 0; i < r.fields.size() && i < where.size(); ++i)
        out[kExportColumns.size() + where[i]] = r.fields[i];
    return out;
}

}  // namespace

int cmd_export(Context& c) {
    std::optional<store::RcptState> state;
    if (auto s = c.take_option("--state")) {
        state = store::parse_state(*s);
        if (!state) throw UsageError("unknown recipient state: " + *s);
    }
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    FieldColumns fc = field_columns(c.store().messages(id));
    std::vector<std::string> header(kExportColumns.begin(), kExportColumns.end());
    header.insert(header.end(), fc.names.begin(), fc.names.end());
    write_csv_record(std::cout, header, CsvCells::inert);
    Progress progress("export: recipients written:");
    c.store().each_recipient(id, state, [&](const Recipient& r) {
        const auto listed = c.store().suppression(r.address);
        write_csv_record(std::cout, row(r, fc, listed ? listed->reason : ""), CsvCells::inert);
        progress.step();
        return true;
    });
    std::cout.flush();
    if (!std::cout) throw std::runtime_error("cannot write the export to standard output");
    return 0;
}

}  // namespace mxlane::ctl
