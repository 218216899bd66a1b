// reply_rules: what a server's reply makes mxlane do, by regular expression (PCRE2): defer, suspend, throttle, hold, bounce.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "libshared/reply_rules.hpp"

#include <pcre2.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "libshared/params.hpp"
#include "libshared/text.hpp"

namespace mxlane {

struct ReplyRules::Compiled {
    ReplyRule rule;
    pcre2_code* code = nullptr;
    ~Compiled() { pcre2_code_free(code); }
};

namespace {

constexpr std::size_t kMaxPattern = 4096;

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    while (true) {
        s = trim(s);
        if (s.empty()) return out;
        auto end = s.find_first_of(" \t");
        out.push_back(s.substr(0, end));
        if (end == std::string_view::npos) return out;
        s.remove_prefix(end);
    }
}

// "N/s", "N/m", "N/h" -> per second; 0 when malformed.
double parse_rate(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash + 2 != text.size()) return 0;
    unsigned long n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + slash, n);
    if (ec != std::errc() || p != text.data() + slash || n == 0) return 0;
    switch (text.back()) {
    case 's': return static_cast<double>(n);
    case 'm': return n / 60.0;
    case 'h': return n / 3600.0;
    default: return 0;
    }
}

}  // namespace

std::string_view scope_name(RuleScope s) {
    switch (s) {
    case RuleScope::recipient: return "recipient";
    case RuleScope::destination: return "destination";
    case RuleScope::provider: return "provider";
    case RuleScope::job: return "job";
    case RuleScope::source: return "source";
    }
    return "recipient";
}

std::string_view action_name(RuleAction a) {
    switch (a) {
    case RuleAction::defer: return "defer";
    case RuleAction::suspend: return "suspend";
    case RuleAction::throttle: return "throttle";
    case RuleAction::hold: return "hold";
    case RuleAction::bounce: return "bounce";
    }
    return "defer";
}

ReplyRules::ReplyRules() = default;
ReplyRules::~ReplyRules() = default;
ReplyRules::ReplyRules(ReplyRules&&) noexcept = default;
ReplyRules& ReplyRules::operator=(ReplyRules&&) noexcept = default;

ReplyRules ReplyRules::parse(std::string_view text, const std::string& name) {
    ReplyRules out;
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        ++line_no;
        const std::string where = name + ":" + std::to_string(line_no);
        auto fail = [&](const std::string& why) { throw ReplyRulesError(where + ": " + why); };
        line = trim(line);
        if (line.empty() || line.front() == '#') continue;
        if (line.front() != '/') fail("a rule starts with /REGEX/");
        // The closing slash: the first one not escaped by a backslash.
        std::size_t close = 1;
        while (close < line.size() && line[close] != '/') close += line[close] == '\\' ? 2 : 1;
        if (close >= line.size()) fail("no closing / after the regular expression");
        auto c = std::make_unique<Compiled>();
        c->rule.where = where;
        c->rule.pattern = std::string(line.substr(1, close - 1));
        if (c->rule.pattern.empty()) fail("empty regular expression");
        if (c->rule.pattern.size() > kMaxPattern) fail("regular expression longer than 4096 bytes");
        // "\/" is a literal slash; PCRE2 takes it as such too.
        int err = 0;
        PCRE2_SIZE offset = 0;
        c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(c->rule.pattern.data()), c->rule.pattern.size(),
                                PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err,
                                &offset, nullptr);
        if (!c->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            fail("bad regular expression at offset " + std::to_string(offset) + ": " +
                 reinterpret_cast<const char*>(msg));
        }
        pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when unavailable
        std::string_view rest = line.substr(close + 1);
        rest = rest.substr(0, rest.find('#'));  // a comment may follow the action
        auto w = words(rest);
        if (w.size() < 2) fail("want /REGEX/ SCOPE ACTION");
        if (w[0] == "recipient") c->rule.scope = RuleScope::recipient;
        else if (w[0] == "destination") c->rule.scope = RuleScope::destination;
        else if (w[0] == "provider") c->rule.scope = RuleScope::provider;
        else if (w[0] == "job") c->rule.scope = RuleScope::job;
        else if (w[0] == "source") c->rule.scope = RuleScope::source;
        else fail("unknown scope \"" + std::string(w[0]) + "\" (recipient, destination, provider, job, source)");
        std::size_t want = 2;
        auto duration_at = [&](std::size_t i) {
            std::int64_t secs = 0;
            if (i >= w.size() || !parse_duration(w[i], secs) || secs <= 0)
                fail(std::string(w[1]) + " wants a duration such as 30m" +
                     (i < w.size() ? ", not \"" + std::string(w[i]) + "\"" : ""));
            return std::chrono::seconds(secs);
        };
        if (w[1] == "defer") {
            c->rule.action = RuleAction::defer;
        } else if (w[1] == "hold") {
            c->rule.action = RuleAction::hold;
        } else if (w[1] == "bounce") {
            c->rule.action = RuleAction::bounce;
        } else if (w[1] == "suspend") {
            c->rule.action = RuleAction::suspend;
            c->rule.duration = duration_at(2);
            want = 3;
        } else if (w[1] == "throttle") {
            c->rule.action = RuleAction::throttle;
            if (w.size() < 3 || (c->rule.per_second = parse_rate(w[2])) <= 0)
                fail("throttle wants a rate such as 1/m" + (w.size() >= 3 ? ", not \"" + std::string(w[2]) + "\"" : ""));
            c->rule.duration = duration_at(3);
            want = 4;
        } else {
            fail("unknown action \"" + std::string(w[1]) + "\" (defer, suspend, throttle, hold, bounce)");
        }
        if (w.size() > want) fail("unexpected \"" + std::string(w[want]) + "\" after the action");
        if ((c->rule.action == RuleAction::defer || c->rule.action == RuleAction::bounce) &&
            c->rule.scope != RuleScope::recipient)
            fail(std::string(w[1]) + " applies to a recipient only");
        if (c->rule.action == RuleAction::hold && c->rule.scope != RuleScope::job) fail("hold applies to a job only");
        if ((c->rule.action == RuleAction::suspend || c->rule.action == RuleAction::throttle) &&
            (c->rule.scope == RuleScope::recipient || c->rule.scope == RuleScope::job))
            fail(std::string(w[1]) + " applies to a destination, provider or source");
        out.rules_.push_back(std::move(c));
    }
    return out;
}

ReplyRules ReplyRules::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ReplyRulesError(path + ": cannot read the reply rules");
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

const ReplyRule* ReplyRules::match(std::string_view reply_line) const {
    if (rules_.empty()) return nullptr;
    // Whether a rule matches needs no captures: one pair of offsets serves every rule.
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(pcre2_match_data_create(1, nullptr),
                                                                          pcre2_match_data_free);
    if (!md) return nullptr;
    for (const auto& c : rules_)
        if (pcre2_match(c->code, reinterpret_cast<PCRE2_SPTR>(reply_line.data()), reply_line.size(), 0, 0, md.get(),
                        nullptr) >= 0)
            return &c->rule;
    return nullptr;
}

std::size_t ReplyRules::size() const { return rules_.size(); }

}  // namespace mxlane
