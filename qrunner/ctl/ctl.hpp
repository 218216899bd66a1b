// ctl: shared pieces of the mxlanectl commands (arguments, output, store access).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/config_file.hpp"
#include "libshared/dates.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/text.hpp"

namespace mxlane::qrunner {
struct RedisReply;
}

namespace mxlane::ctl {

// A bad argument or an unknown job: one line on stderr, exit status 1.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Context {
    Config cfg;
    std::vector<std::string> args;  // after the command name, options removed: --json
    bool json = false;
    std::unique_ptr<store::QueueStore> queue;

    store::QueueStore& store();  // opened on first use
    // Takes "--name VALUE" out of args; nullopt when absent.
    std::optional<std::string> take_option(const std::string& name);
    bool take_flag(const std::string& name);
    // Refuses leftover arguments (anything not consumed).
    void no_more_args(std::size_t allowed = 0) const;
    std::uint64_t job_arg(std::size_t index);  // "J00002A" -> id; unknown -> UsageError
};

// Left-aligned text columns for people. Cells are made printable (see printable()):
// job names, addresses and replies come from outside and must not drive the terminal.
class Table {
public:
    explicit Table(std::vector<std::string> header) { add(std::move(header)); }
    void add(std::vector<std::string> row);
    std::string str() const;

private:
    std::vector<std::vector<std::string>> rows_;
};

// The columns export writes before the personalisation fields; submit recognises
// them in a recipients file, so that an export can be submitted again as it is
// (also one written before "class" was added: the first six alone).
// "suppression": why the address is on the suppression list now (bounce, complaint, unsubscribed, manual), "" when it is not.
inline constexpr std::array<std::string_view, 8> kExportColumns = {"address", "state", "attempts", "last_reply",
                                                                   "dsn",     "host",  "class",    "suppression"};
inline constexpr std::size_t kExportColumnsBefore = 6;

int cmd_config(Context& c);
int cmd_jobs(Context& c);
int cmd_job(Context& c);
int cmd_recipients(Context& c);
int cmd_flush(Context& c);
int cmd_hold(Context& c);
int cmd_release(Context& c);
int cmd_delete(Context& c);
int cmd_export(Context& c);
int cmd_submit(Context& c);
int cmd_verify(Context& c);
int cmd_suppress(Context& c);
int cmd_dkim(Context& c);
int cmd_destinations(Context& c);
int cmd_pause(Context& c);
int cmd_resume(Context& c);
int cmd_pools(Context& c);
int cmd_check(Context& c);
int cmd_hosts(Context& c);

// One command to shared_state's Redis (hosts_cmd.cpp); nullopt when it does not
// answer within shared_state_timeout.
std::optional<qrunner::RedisReply> ask_shared_state(const Config& cfg, std::vector<std::string> command);

}  // namespace mxlane::ctl
