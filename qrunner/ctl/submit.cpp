// submit: mxlanectl submit --message FILE --recipients FILE [--name N] [--from ADDR] [--pool P]: a job from files.
#include <algorithm>
#include <iostream>
#include <sstream>
#include <unordered_set>

#include "libshared/address.hpp"
#include "libshared/json.hpp"
#include "libshared/render_plan.hpp"
#include "libshared/source_pools.hpp"
#include "libshared/template.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/message_file.hpp"
#include "qrunner/ctl/progress.hpp"
#include "qrunner/ctl/recipient_file.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::ctl {
namespace {

// One transaction per batch: big enough that a million rows take ~200 commits,
// small enough that the transaction's locks and log stay modest.
constexpr std::size_t kBatch = 5000;

std::string required(Context& c, const std::string& option) {
    auto v = c.take_option(option);
    if (!v || v->empty()) throw UsageError("submit needs " + option + " FILE");
    return *v;
}

// Every placeholder must name a column; {{address}} and the first column's name mean the address.
void check_placeholders(const MessageFile& msg, const RecipientFileFacts& facts, const std::string& rcpt_path) {
    const std::unordered_set<std::string> columns(facts.field_names.begin(), facts.field_names.end());
    // Read in decoded form: placeholders in base64 or quoted-printable parts and encoded-words count.
    for (const auto& name : placeholders(mime::RenderPlan(msg.text()).template_text())) {
        if (name == "address" || name == facts.address_column || columns.contains(name)) continue;
        std::size_t at = placeholder_offset(msg.text(), name);
        std::string where = at == std::string::npos ? " (in an encoded part or field)"
                                                    : ":" + std::to_string(msg.line_of(at));
        throw UsageError(msg.path() + where + ": placeholder {{" + name + "}} has no column in " + rcpt_path);
    }
}

std::string sender_of(Context& c, const MessageFile& msg) {
    if (auto from = c.take_option("--from")) {
        std::string a = strip_brackets(*from);
        if (!valid_address(a)) throw UsageError("--from: not a valid address: " + *from);
        return a;
    }
    return msg.from_address();
}

// --pool P: a pool of source_pools (refused at once when it names none; a pool that
// disappears from the file later holds the job in the qrunner).
std::string pool_of(Context& c) {
    auto pool = c.take_option("--pool");
    if (!pool) return "";
    std::string file = c.cfg.get("source_pools");
    if (file.empty()) throw UsageError("--pool " + *pool + ": source_pools is not set");
    SourcePools pools;
    try {
        pools = load_source_pools(file);
    } catch (const std::runtime_error& e) {
        throw ConfigError(e.what());
    }
    if (pools.pool(*pool).empty())
        throw UsageError("--pool: unknown pool " + *pool + " (not in " + file + ")");
    return *pool;
}

store::Intake intake_for(const std::string& name, const std::string& sender, const MessageFile& msg,
                         const RecipientFileFacts& facts) {
    store::Intake in;
    in.job_name = name;
    in.sender = sender;
    in.personalised = mime::RenderPlan(msg.text()).personalised();
    // A non-personalised message needs no fields: the qrunner then batches recipients per domain.
    if (in.personalised) in.field_names = facts.field_names;
    in.eight_bit = smtp::has_eight_bit(msg.text()) || (in.personalised && facts.eight_bit_fields);
    in.smtputf8 = facts.utf8_addresses || smtp::has_eight_bit(sender);
    in.job_state = store::JobState::incoming;  // nothing is sent before every row is stored
    return in;
}

// Stores the message and the rows batch by batch, then activates the job; any failure
// on the way removes the job again, so that a half-stored list is never delivered.
std::uint64_t store_job(Context& c, const store::Intake& in, const MessageFile& msg, const RecipientFile& rcpts) {
    auto& q = c.store();
    std::istringstream text(msg.text());
    auto added = q.add_message(in, text, store::now_ms());
    try {
        if (!added.new_job) throw UsageError("a job named \"" + in.job_name + "\" exists already");
        Progress progress("submit: recipients stored:");
        rcpts.each_batch(kBatch, [&](std::span<const store::NewRecipient> batch) {
            if (!in.personalised) {
                std::vector<store::NewRecipient> bare(batch.size());
                for (std::size_t i = 0; i < batch.size(); ++i) bare[i].address = batch[i].address;
                q.add_recipients(added.job_id, added.message_id, bare, store::now_ms());
            } else {
                q.add_recipients(added.job_id, added.message_id, batch, store::now_ms());
            }
            progress.step(batch.size());
        });
        q.activate_job(added.job_id);
    } catch (...) {
        if (added.new_job) q.remove_job(added.job_id);
        throw;
    }
    return added.job_id;
}

}  // namespace

int cmd_submit(Context& c) {
    std::string message_path = required(c, "--message"), rcpt_path = required(c, "--recipients");
    std::string name = c.take_option("--name").value_or("");
    auto msg = MessageFile::read(message_path, static_cast<std::uint64_t>(c.cfg.integer("message_size_limit")));
    std::string sender = sender_of(c, msg);
    std::string pool = pool_of(c);
    c.no_more_args();
    if (!name.empty() && c.store().job_by_name(name)) throw UsageError("a job named \"" + name + "\" exists already");

    RecipientFile rcpts(rcpt_path);
    Progress checked("submit: recipients checked:");
    RecipientFileFacts facts = rcpts.check(checked);  // the whole file, before anything is stored
    checked.done();
    check_placeholders(msg, facts, rcpt_path);
    if (facts.address_column != "address")
        msg.set_text(mime::rename_placeholder_mime(msg.text(), facts.address_column, "address"));
    msg.add_missing_headers(store::now_ms(), domain_of(sender));

    store::Intake in = intake_for(name, sender, msg, facts);
    in.pool = pool;
    std::uint64_t id = store_job(c, in, msg, rcpts);
    if (c.json) {
        json::object doc{
            {"job", store::format_job_id(id)}, {"recipients", facts.rows}, {"personalised", in.personalised}};
        std::cout << json::serialize(std::move(doc)) << "\n";
    } else {
        std::cout << store::format_job_id(id) << "\n";
    }
    return 0;
}

}  // namespace mxlane::ctl
