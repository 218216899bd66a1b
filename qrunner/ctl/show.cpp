// show: mxlanectl jobs, job ID, recipients ID [--state S], as text or --json.
#include <iostream>

#include "libshared/json.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

using store::Job;
using store::kStateCount;
using store::RcptState;
using store::Recipient;

void job_json(JsonWriter& j, const Job& job) {
    j.key("id").value(store::format_job_id(job.id));
    j.key("name").value(job.name);
    j.key("sender").value(job.sender);
    j.key("created").value(iso_time(job.created));
    j.key("state").value(store::job_state_name(job.state));
    j.key("recipients").value(job.total());
    j.key("counts").begin_object();
    for (std::size_t i = 0; i < kStateCount; ++i)
        j.key(store::state_name(static_cast<RcptState>(i))).value(job.counts[i]);
    j.end_object();
}

std::vector<std::string> job_row(const Job& job) {
    std::vector<std::string> row = {store::format_job_id(job.id), std::string(store::job_state_name(job.state)),
                                    iso_time(job.created), std::to_string(job.total())};
    for (std::size_t i = 0; i < kStateCount; ++i) row.push_back(std::to_string(job.counts[i]));
    row.push_back(job.name.empty() ? "-" : job.name);
    row.push_back(job.sender.empty() ? "<>" : job.sender);
    return row;
}

std::vector<std::string> job_header() {
    std::vector<std::string> h = {"ID", "STATE", "CREATED", "RCPTS"};
    for (std::size_t i = 0; i < kStateCount; ++i) {
        std::string name(store::state_name(static_cast<RcptState>(i)));
        for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        h.push_back(name);
    }
    h.push_back("NAME");
    h.push_back("SENDER");
    return h;
}

std::string last_reply(const Recipient& r) { return r.reply_text; }

}  // namespace

int cmd_jobs(Context& c) {
    c.no_more_args();
    auto jobs = c.store().jobs();
    if (c.json) {
        JsonWriter j;
        j.begin_array();
        for (const auto& job : jobs) {
            j.begin_object();
            job_json(j, job);
            j.end_object();
        }
        j.end_array();
        std::cout << j.str() << "\n";
        return 0;
    }
    if (jobs.empty()) {
        std::cout << "Queue is empty\n";
        return 0;
    }
    Table t(job_header());
    for (const auto& job : jobs) t.add(job_row(job));
    std::cout << t.str();
    return 0;
}

int cmd_job(Context& c) {
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    auto job = *c.store().job(id);
    auto messages = c.store().messages(id);
    // In flight: claimed by a qrunner and not yet answered (delete waits for these).
    auto inflight = static_cast<std::uint64_t>(c.store().inflight_count(id));
    if (c.json) {
        JsonWriter j;
        j.begin_object();
        job_json(j, job);
        j.key("inflight").value(inflight);
        j.key("messages").begin_array();
        for (const auto& m : messages) {
            j.begin_object();
            j.key("id").value(m.id).key("sender").value(m.sender).key("host_queue_id").value(m.host_queue_id);
            j.key("size").value(m.size).key("personalised").value(m.personalised);
            j.key("created").value(iso_time(m.created));
            j.end_object();
        }
        j.end_array();
        j.end_object();
        std::cout << j.str() << "\n";
        return 0;
    }
    std::cout << "job:        " << store::format_job_id(job.id) << "\n"
              << "name:       " << (job.name.empty() ? "-" : job.name) << "\n"
              << "sender:     " << (job.sender.empty() ? "<>" : job.sender) << "\n"
              << "created:    " << iso_time(job.created) << "\n"
              << "state:      " << store::job_state_name(job.state) << "\n"
              << "recipients: " << job.total() << "\n"
              << "in flight:  " << inflight << "\n";
    for (std::size_t i = 0; i < kStateCount; ++i)
        if (job.counts[i])
            std::cout << "  " << store::state_name(static_cast<RcptState>(i)) << ": " << job.counts[i] << "\n";
    std::cout << "messages:   " << messages.size() << "\n";
    for (const auto& m : messages)
        std::cout << "  " << m.id << "  " << m.size << " bytes" << (m.personalised ? ", personalised" : "")
                  << (m.host_queue_id.empty() ? "" : ", host queue id " + m.host_queue_id) << "\n";
    return 0;
}

int cmd_recipients(Context& c) {
    std::optional<RcptState> state;
    if (auto s = c.take_option("--state")) {
        state = store::parse_state(*s);
        if (!state) throw UsageError("unknown recipient state: " + *s);
    }
    std::uint64_t id = c.job_arg(0);
    c.no_more_args(1);
    if (c.json) {
        // Streamed row by row so that a big job does not sit in memory as text.
        std::cout << "[";
        bool first = true;
        c.store().each_recipient(id, state, [&](const Recipient& r) {
            JsonWriter j;
            j.begin_object();
            j.key("address").value(r.address).key("state").value(store::state_name(r.state));
            j.key("attempts").value(static_cast<std::int64_t>(r.attempts));
            if (store::is_pending(r.state)) j.key("next_attempt").value(iso_time(r.next_attempt));
            else j.key("next_attempt").null();
            j.key("last_reply").value(last_reply(r)).key("dsn").value(r.dsn).key("host").value(r.host);
            j.end_object();
            std::cout << (first ? "" : ",") << j.str();
            first = false;
            return true;
        });
        std::cout << "]\n";
        return 0;
    }
    Table t({"ADDRESS", "STATE", "ATTEMPTS", "NEXT_ATTEMPT", "DSN", "HOST", "LAST_REPLY"});
    c.store().each_recipient(id, state, [&](const Recipient& r) {
        t.add({r.address, std::string(store::state_name(r.state)), std::to_string(r.attempts),
               store::is_pending(r.state) ? iso_time(r.next_attempt) : "-", r.dsn.empty() ? "-" : r.dsn,
               r.host.empty() ? "-" : r.host, r.reply_text.empty() ? "-" : r.reply_text});
        return true;
    });
    std::cout << t.str();
    return 0;
}

}  // namespace mxlane::ctl
