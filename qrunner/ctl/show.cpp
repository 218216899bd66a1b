// show: mxlanectl jobs, job ID, recipients ID [--state S], as text or --json.
#include <iostream>

#include "libshared/json.hpp"
#include "libshared/printable.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {
namespace {

using store::Job;
using store::kStateCount;
using store::RcptState;
using store::Recipient;

json::object job_json(const Job& job) {
    json::object counts;
    for (std::size_t i = 0; i < kStateCount; ++i) counts[store::state_name(static_cast<RcptState>(i))] = job.counts[i];
    return {{"id", store::format_job_id(job.id)},
            {"name", job.name},
            {"sender", job.sender},
            {"created", iso_time(job.created)},
            {"state", store::job_state_name(job.state)},
            {"hold_reason", job.hold_reason},
            {"open", job.open_ms > 0 && !job.closed},  // a keyed job still taking messages
            {"recipients", job.total()},
            {"counts", std::move(counts)}};
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

}  // namespace

int cmd_jobs(Context& c) {
    c.no_more_args();
    auto jobs = c.store().jobs();
    if (c.json) {
        json::array all;
        for (const auto& job : jobs) all.push_back(job_json(job));
        std::cout << json::serialize(std::move(all)) << "\n";
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
    const std::uint64_t complaints = c.store().complaints(id);  // feedback-loop reports the milter read
    const auto suppressions = c.store().suppressions_of(id);    // addresses this job put on the list, by reason
    if (c.json) {
        json::object doc = job_json(job);
        doc["inflight"] = inflight;
        doc["complaints"] = complaints;
        json::object& by_reason = doc["suppressions"].emplace_object();
        for (const auto& [reason, n] : suppressions) by_reason[reason] = n;
        json::array& list = doc["messages"].emplace_array();
        for (const auto& m : messages)
            list.push_back(json::object{{"id", m.id},
                                        {"sender", m.sender},
                                        {"host_queue_id", m.host_queue_id},
                                        {"size", m.size},
                                        {"personalised", m.personalised},
                                        {"pool", m.pool},
                                        {"created", iso_time(m.created)}});
        std::cout << json::serialize(std::move(doc)) << "\n";
        return 0;
    }
    std::cout << "job:        " << store::format_job_id(job.id) << "\n"
              << "name:       " << (job.name.empty() ? "-" : printable(job.name)) << "\n"
              << "sender:     " << (job.sender.empty() ? "<>" : printable(job.sender)) << "\n"
              << "created:    " << iso_time(job.created) << "\n"
              << "state:      " << store::job_state_name(job.state)
              << (job.hold_reason.empty() ? "" : " (" + printable(job.hold_reason) + ")") << "\n"
              << (job.open_ms > 0 ? std::string("intake:     ") +
                                        (job.closed ? "closed" : "open (until " + std::to_string(job.open_ms / 1000) +
                                                                     " s without a message)") + "\n"
                                  : std::string())
              << "recipients: " << job.total() << "\n"
              << "in flight:  " << inflight << "\n"
              << "complaints: " << complaints << "\n"
              << "suppressed: " << store::suppression_summary(suppressions) << "\n";
    for (std::size_t i = 0; i < kStateCount; ++i)
        if (job.counts[i])
            std::cout << "  " << store::state_name(static_cast<RcptState>(i)) << ": " << job.counts[i] << "\n";
    std::cout << "messages:   " << messages.size() << "\n";
    for (const auto& m : messages)
        std::cout << "  " << m.id << "  " << m.size << " bytes" << (m.personalised ? ", personalised" : "")
                  << (m.pool.empty() ? "" : ", pool " + printable(m.pool))
                  << (m.host_queue_id.empty() ? "" : ", host queue id " + printable(m.host_queue_id)) << "\n";
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
            json::object row{{"message", r.message_id},
                             {"address", r.address},
                             {"state", store::state_name(r.state)},
                             {"attempts", r.attempts},
                             {"next_attempt", nullptr},
                             {"last_reply", r.reply_text},
                             {"dsn", r.dsn},
                             {"class", store::failure_class(r)},
                             {"host", r.host}};
            if (store::is_pending(r.state)) row["next_attempt"] = iso_time(r.next_attempt);
            std::cout << (first ? "" : ",") << json::serialize(std::move(row));
            first = false;
            return true;
        });
        std::cout << "]\n";
        return 0;
    }
    // MESSAGE: a job's messages may share an address (mxlanectl job lists the messages).
    Table t({"MESSAGE", "ADDRESS", "STATE", "ATTEMPTS", "NEXT_ATTEMPT", "DSN", "HOST", "LAST_REPLY"});
    c.store().each_recipient(id, state, [&](const Recipient& r) {
        t.add({std::to_string(r.message_id), r.address, std::string(store::state_name(r.state)), std::to_string(r.attempts),
               store::is_pending(r.state) ? iso_time(r.next_attempt) : "-", r.dsn.empty() ? "-" : r.dsn,
               r.host.empty() ? "-" : r.host, r.reply_text.empty() ? "-" : r.reply_text});
        return true;
    });
    std::cout << t.str();
    return 0;
}

}  // namespace mxlane::ctl
