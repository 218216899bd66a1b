// reply_rules: what a server's reply makes mxlane do, by regular expression (PCRE2): defer, suspend, throttle, hold, bounce.
#pragma once
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// A file of rules, one a line: "/REGEX/ SCOPE ACTION [ARGS]"; '#' starts a
// comment (a line of its own, or after the action).
// REGEX is matched (case-insensitive, PCRE2) against "CODE ENHANCED TEXT" of
// a reply; a '/' inside it is written "\/". The first rule that matches
// decides.
//
// Scopes: recipient (the one recipient), destination (the MX set), provider
// (every destination of the provider; until destinations are grouped by
// provider, the destination), job, source (one sending address; the
// destination until there are several).
// Actions: defer; suspend DURATION; throttle RATE DURATION (RATE "N/s",
// "N/m" or "N/h": messages to that scope at most that fast for DURATION);
// hold; bounce.
enum class RuleScope { recipient, destination, provider, job, source };
enum class RuleAction { defer, suspend, throttle, hold, bounce };

struct ReplyRule {
    std::string pattern;  // as written, between the slashes
    RuleScope scope = RuleScope::recipient;
    RuleAction action = RuleAction::defer;
    std::chrono::seconds duration{0};  // suspend, throttle
    double per_second = 0;             // throttle
    std::string where;                 // "FILE:LINE", for the log
};

std::string_view scope_name(RuleScope s);
std::string_view action_name(RuleAction a);

// A rule file that cannot be used: "FILE:LINE: problem".
class ReplyRulesError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ReplyRules {
public:
    ReplyRules();
    ~ReplyRules();
    ReplyRules(ReplyRules&&) noexcept;
    ReplyRules& operator=(ReplyRules&&) noexcept;

    // The rules in `text` (`name` for messages). Throws ReplyRulesError.
    static ReplyRules parse(std::string_view text, const std::string& name);
    // The rules in a file. Throws ReplyRulesError (also when it cannot be read).
    static ReplyRules load(const std::string& path);

    // The first rule matching "CODE ENHANCED TEXT" (Reply::str()), or null.
    // Safe to call from several threads at once.
    const ReplyRule* match(std::string_view reply_line) const;

    std::size_t size() const;

private:
    struct Compiled;
    std::vector<std::unique_ptr<Compiled>> rules_;
};

}  // namespace mxlane
