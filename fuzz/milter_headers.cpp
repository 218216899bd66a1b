// fuzz target milter_headers: any envelope, header fields and body the MTA hands the milter are taken
// without crashing: the intake decision, the job name, the stored text and its size all stay consistent.
#include <sstream>

#include "fuzz/fuzz_input.hpp"
#include "milter/intake_policy.hpp"
#include "milter/message_context.hpp"

using namespace mxlane;
using namespace mxlane::milter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // sender NUL param NUL rcpt NUL name NUL value NUL name NUL value ... ; the last part is the body.
    auto parts = fuzz::split_nul(data, size, 16);
    IntakePolicy policy;
    policy.bulk_header = "X-Mxlane-Job";
    policy.min_recipients = 3;
    policy.sender_patterns = {"news@corp.test", "@lists.test", "bulk.test"};
    policy.sasl_patterns = {"mailer", "@corp.test"};

    MessageContext m("/nonexistent-spill-dir", 1 << 16);
    std::string sender(parts[0]), param(parts.size() > 1 ? parts[1] : "");
    char* argv[] = {sender.data(), param.data(), nullptr};
    m.set_sender(argv);
    m.facts.bulk_sender = sender_is_bulk(policy, m.sender());
    m.facts.bulk_login = sasl_login_is_bulk(policy, param);
    (void)decide(policy, m.facts, Step::envfrom);
    if (parts.size() > 2) m.add_recipient(parts[2]);
    (void)decide(policy, m.facts, Step::data);

    std::size_t i = 3;
    for (; i + 2 < parts.size(); i += 2) {
        std::string_view name = parts[i], value = parts[i + 1];
        if (is_bulk_header(policy, name)) {
            std::string job = job_name_from_header(value);
            if (!job.empty() && (job.front() == ' ' || job.back() == ' ' || job.find('\n') != std::string::npos))
                __builtin_trap();  // unfolded and trimmed
            m.facts.bulk_header_seen = true;
        }
        m.add_header(name, value, !value.empty() && value[0] == ' ');
    }
    m.end_of_headers();
    (void)decide(policy, m.facts, Step::eoh);
    if (i < parts.size()) m.add_body(parts[i]);
    if (!m.too_large()) {
        std::ostringstream stored;
        stored << m.text().rdbuf();
        if (stored.str().size() != m.size()) __builtin_trap();
    }
    return 0;
}
