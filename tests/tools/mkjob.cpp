// mkjob: test tool that puts a job straight into a queue store (recipients on stdin, one a line).
// usage: mkjob QUEUE_DIR MESSAGE_FILE [--name N] [--from ADDR] [--per-message K] [--fields F1,F2...] [--pool P]
// With --fields the job is personalised: each stdin line is the address and the fields' values, tab-separated.
#include <fstream>
#include <iostream>
#include <sstream>

#include "libshared/store/queue_store.hpp"

using namespace mxlane::store;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: mkjob QUEUE_DIR MESSAGE_FILE [--name N] [--from ADDR] [--per-message K] [--fields F1,F2...] [--pool P]\n";
        return 1;
    }
    std::string queue = argv[1], message_file = argv[2], name, from = "sender@mxlane.test", pool;
    std::size_t per_message = 0;
    std::vector<std::string> fields;
    auto split = [](const std::string& s, char sep) {
        std::vector<std::string> out;
        std::stringstream ss(s);
        for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
        return out;
    };
    for (int i = 3; i + 1 < argc; i += 2) {
        std::string o = argv[i];
        if (o == "--name") name = argv[i + 1];
        else if (o == "--from") from = argv[i + 1];
        else if (o == "--per-message") per_message = std::stoul(argv[i + 1]);
        else if (o == "--fields") fields = split(argv[i + 1], ',');
        else if (o == "--pool") pool = argv[i + 1];  // unchecked: a test may name a pool that does not exist
        else {
            std::cerr << "mkjob: unknown option " << o << "\n";
            return 1;
        }
    }
    std::ifstream in(message_file);
    if (!in) {
        std::cerr << "mkjob: cannot read " << message_file << "\n";
        return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    QueueStore q(queue);
    std::vector<NewRecipient> all;
    std::string line;
    while (std::getline(std::cin, line))
        if (line.empty()) continue;
        else if (fields.empty()) all.push_back({line, {}});
        else {
            auto cols = split(line, '\t');
            all.push_back({cols.at(0), std::vector<std::string>(cols.begin() + 1, cols.end())});
            all.back().fields.resize(fields.size());
        }
    if (per_message == 0) per_message = all.size();
    std::uint64_t job = 0;
    for (std::size_t i = 0; i < all.size(); i += per_message) {
        Intake intake;
        intake.job_name = name;
        intake.sender = from;
        intake.pool = pool;
        intake.personalised = !fields.empty();
        intake.field_names = fields;
        intake.recipients.assign(all.begin() + i, all.begin() + std::min(all.size(), i + per_message));
        std::istringstream body(text.str());
        auto res = q.add_message(intake, body, now_ms());
        job = res.job_id;
        if (name.empty() && i + per_message < all.size()) std::cout << format_job_id(job) << "\n";
    }
    std::cout << format_job_id(job) << "\n";
    return 0;
}
