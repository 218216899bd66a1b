// ctl: shared pieces of the mxlanectl commands (arguments, output, store access).
#include "qrunner/ctl/ctl.hpp"

#include <algorithm>

#include "libshared/printable.hpp"

namespace mxlane::ctl {

store::QueueStore& Context::store() {
    if (!queue) queue = std::make_unique<store::QueueStore>(cfg.get("queue_directory"));
    return *queue;
}

std::optional<std::string> Context::take_option(const std::string& name) {
    auto it = std::find(args.begin(), args.end(), name);
    if (it == args.end()) return std::nullopt;
    if (it + 1 == args.end()) throw UsageError(name + " needs a value");
    std::string value = *(it + 1);
    args.erase(it, it + 2);
    return value;
}

bool Context::take_flag(const std::string& name) {
    auto it = std::find(args.begin(), args.end(), name);
    if (it == args.end()) return false;
    args.erase(it);
    return true;
}

void Context::no_more_args(std::size_t allowed) const {
    if (args.size() > allowed) throw UsageError("unexpected argument: " + args[allowed]);
}

std::uint64_t Context::job_arg(std::size_t index) {
    if (args.size() <= index) throw UsageError("a job id is needed (see mxlanectl jobs)");
    auto id = store::parse_job_id(args[index]);
    if (!id) throw UsageError("not a job id: " + args[index]);
    if (!store().job(*id)) throw UsageError("no such job: " + args[index]);
    return *id;
}

void Table::add(std::vector<std::string> row) {
    for (auto& cell : row) cell = printable(cell);
    rows_.push_back(std::move(row));
}

std::string Table::str() const {
    std::vector<std::size_t> width;
    for (const auto& row : rows_)
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], row[i].size());
        }
    std::string out;
    for (const auto& row : rows_) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        out += line + "\n";
    }
    return out;
}

}  // namespace mxlane::ctl
