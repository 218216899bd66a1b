// bounce_text: the non-standard bounces read from their text: Postfix, Exim, qmail, Exchange, and codes paired with addresses.
#include "libshared/bounce_text.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

#include "libshared/address.hpp"
#include "libshared/header_section.hpp"
#include "libshared/report_text.hpp"
#include "libshared/text.hpp"

namespace mxlane::report {

namespace {

using Lines = std::vector<std::string_view>;
constexpr std::size_t npos = std::string_view::npos;

// What every reader sees of the bounce.
struct Notice {
    std::string subject, from, to;
    std::string text;  // the human-readable part
    Lines lines;       // of text
    bool delayed = false;
    bool null_sender = false;  // Return-Path: <> (added by the MTA that delivered it)
};

// Lines after which a bounce quotes the message it returns.
constexpr std::string_view kCopyMarkers[] = {
    "------ This is a copy of the message",  // Exim
    "--- Below this line is a copy of the message",  // qmail
    "--- Enclosed are the original headers of the message",  // qmail
    "Original message headers:",             // Exchange
    "----- Original message -----",
    "------ This is a copy of the message's headers",
    "----- Original message follows -----",
};

bool is_copy_marker(std::string_view line) {
    line = trim(line);
    for (auto m : kCopyMarkers)
        if (line.size() >= m.size() && contains_nocase(line.substr(0, m.size()), m)) return true;
    return false;
}

// The first line from `from` holding `phrase`; npos when none.
std::size_t find_line(const Lines& lines, std::string_view phrase, std::size_t from = 0) {
    for (std::size_t i = from; i < lines.size(); ++i)
        if (contains_nocase(lines[i], phrase)) return i;
    return npos;
}

// How far a line is indented (a tab counts 8).
std::size_t indent_of(std::string_view line) {
    std::size_t width = 0;
    for (char c : line) {
        if (c == ' ') ++width;
        else if (c == '\t') width += 8;
        else break;
    }
    return width;
}

// The text of an HTML part, roughly: tags dropped (a line break for those
// that end a block), the common entities undone.
std::string html_text(std::string_view html) {
    std::string out;
    for (std::size_t i = 0; i < html.size(); ++i) {
        char c = html[i];
        if (c == '<') {
            std::size_t close = html.find('>', i);
            if (close == npos) break;
            std::string tag = to_lower(html.substr(i + 1, std::min<std::size_t>(close - i - 1, 4)));
            for (std::string_view t : {"br", "p", "/p", "div", "/div", "tr", "li", "/tr"})
                if (tag.starts_with(t) && (tag.size() == t.size() || !std::isalpha(static_cast<unsigned char>(tag[t.size()])))) {
                    out += '\n';
                    break;
                }
            i = close;
        } else if (c == '&') {
            bool done = false;
            for (auto [entity, ch] : {std::pair{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&nbsp;", ' '},
                                      {"&quot;", '"'}, {"&#39;", '\''}})
                if (html.substr(i).starts_with(entity)) {
                    out += ch;
                    i += std::string_view(entity).size() - 1;
                    done = true;
                    break;
                }
            if (!done) out += c;
        } else {
            out += c;
        }
    }
    return out;
}

Notice notice_of(const mime::MessageParts& parts) {
    Notice n;
    if (const HeaderField* f = find_header_field(parts.header, "subject")) n.subject = f->value;
    if (const HeaderField* f = find_header_field(parts.header, "from")) n.from = f->value;
    if (const HeaderField* f = find_header_field(parts.header, "to")) n.to = f->value;
    if (const HeaderField* f = find_header_field(parts.header, "return-path"))
        n.null_sender = single_line_value(f->value) == "<>";
    const mime::LeafPart* html = nullptr;
    for (const auto& p : parts.leaves) {
        if (p.media_type == "text/plain") {
            n.text = p.body;
            html = nullptr;
            break;
        }
        if (p.media_type == "text/html" && !html) html = &p;
    }
    if (html) n.text = html_text(html->body);
    n.lines = mime::split_lines(n.text);
    // A subject says "delay" of its own only at its start: "Undeliverable: Shipping
    // delay" echoes the returned message's subject after a failure.
    std::string subject = to_lower(trim(n.subject));
    for (std::string_view s : {"warning:", "delayed mail", "delivery delay", "delay notice"})
        if (subject.starts_with(s)) n.delayed = true;
    if (contains_nocase(n.subject, "notification (delay)")) n.delayed = true;
    for (std::string_view s : {"has not yet been delivered", "THIS IS A WARNING ONLY", "Delivery is delayed to",
                               "will continue to try", "still trying to deliver"})
        if (contains_nocase(n.text, s)) n.delayed = true;
    return n;
}

// An address as a bounce writes it between "<" and ">": one word with an "@".
bool plain_address(std::string_view a) {
    return a.find('@') != npos && a.find_first_of(" \t\r\n<>") == npos;
}

DsnRecipient recipient(std::string address, std::string_view diagnostic, std::string remote, const Notice& n) {
    DsnRecipient r;
    r.final_recipient = std::move(address);
    r.action = n.delayed ? "delayed" : "failed";
    r.diagnostic = single_line_value(diagnostic);
    r.status = status_in_text(r.diagnostic, n.delayed ? "4.0.0" : "5.0.0");
    r.remote_mta = single_line_value(remote);
    return r;
}

// Lines [begin, end) joined by one space.
std::string joined(const Lines& lines, std::size_t begin, std::size_t end) {
    std::string out;
    for (std::size_t i = begin; i < end; ++i) out += std::string(trim(lines[i])) + " ";
    return single_line_value(out);
}

// The text after `marker` in `text` (ASCII case ignored); "" when it is not there.
std::string_view after_marker(std::string_view text, std::string_view marker) {
    for (std::size_t i = 0; i + marker.size() <= text.size(); ++i)
        if (contains_nocase(text.substr(i, marker.size()), marker)) return trim(text.substr(i + marker.size()));
    return {};
}

// ---- Postfix: "<addr>: host mx[ip] said: 550 5.1.1 ..." paragraphs (bounce(8) templates).

bool postfix_knows(const Notice& n) {
    return contains_nocase(n.text, "I'm sorry to have to inform you that your message") ||
           (contains_nocase(n.text, "This is the mail system at host") &&
            (contains_nocase(n.text, "could not be delivered") || contains_nocase(n.text, "THIS IS A WARNING ONLY")));
}

std::vector<DsnRecipient> postfix_read(const Notice& n) {
    std::vector<DsnRecipient> out;
    for (std::size_t i = 0; i < n.lines.size(); ++i) {
        std::string_view line = n.lines[i];
        std::size_t close = line.find('>');
        if (!line.starts_with('<') || close == npos) continue;
        std::string address(line.substr(1, close - 1));
        std::string_view rest = line.substr(close + 1);
        if (rest.starts_with(" (expanded from")) {
            std::size_t p = rest.find("):");
            rest = p == npos ? std::string_view() : rest.substr(p + 1);
        }
        if (!plain_address(address) || !rest.starts_with(':')) continue;
        std::size_t end = i + 1;
        while (end < n.lines.size() && indent_of(n.lines[end]) > 0 && !trim(n.lines[end]).empty()) ++end;
        std::string text = single_line_value(std::string(rest.substr(1)) + " " + joined(n.lines, i + 1, end));
        std::string remote;
        std::string_view diagnostic = text;
        if (std::size_t said = text.find(" said: "); said != npos) {
            diagnostic = std::string_view(text).substr(said + 7);
            if (std::size_t host = text.rfind("host ", said); host != npos)
                remote = text.substr(host + 5, std::min(text.find('[', host), said) - host - 5);
        }
        out.push_back(recipient(address, diagnostic, remote, n));
        i = end - 1;
    }
    return out;
}

// ---- Exim: indented address lines, each followed by its more indented reasons.

bool exim_knows(const Notice& n) {
    return contains_nocase(n.text, "created automatically by mail delivery software") &&
           (contains_nocase(n.text, "could not be delivered to one or more of its") ||
            contains_nocase(n.text, "has not yet been delivered to one or more of its"));
}

DsnRecipient exim_recipient(std::string address, const std::vector<std::string_view>& detail, const Notice& n) {
    std::string remote, text;
    for (std::string_view d : detail) {
        if (d.starts_with("host ") && remote.empty()) {
            std::string_view h = d.substr(5);
            remote = std::string(h.substr(0, h.find(' ')));
            if (std::size_t colon = d.find("]: "); colon != npos) text += std::string(d.substr(colon + 3)) + " ";
            continue;
        }
        text += std::string(d) + " ";
    }
    text = single_line_value(text);
    std::string_view diagnostic = text;
    if (std::string_view smtp = after_marker(text, "SMTP error from remote mail server after "); !smtp.empty()) {
        std::size_t colon = smtp.find(": ");
        if (colon != npos) diagnostic = smtp.substr(colon + 2);
    }
    if (diagnostic.starts_with("Delay reason: ")) diagnostic.remove_prefix(14);
    return recipient(std::move(address), diagnostic, remote, n);
}

std::vector<DsnRecipient> exim_read(const Notice& n) {
    std::vector<DsnRecipient> out;
    std::size_t start = find_line(n.lines, "delivered to one or more of its");
    if (start == npos) return out;
    std::string address;
    std::vector<std::string_view> detail;
    auto flush = [&] {
        if (!address.empty()) out.push_back(exim_recipient(std::move(address), detail, n));
        address.clear();
        detail.clear();
    };
    for (std::size_t i = start + 1; i < n.lines.size(); ++i) {
        std::string_view line = n.lines[i], t = trim(line);
        if (is_copy_marker(line)) break;
        if (t.empty()) continue;
        std::size_t indent = indent_of(line);
        if (indent == 0) {
            flush();
        } else if (indent <= 3 && t.find(' ') == npos && t.find('@') != npos) {
            flush();
            address = find_address(t);
        } else if (indent >= 4 && !address.empty()) {
            detail.push_back(t);
        }
    }
    flush();
    return out;
}

// ---- qmail: "<addr>:" paragraphs (qmail-send's bounce).

bool qmail_knows(const Notice& n) { return contains_nocase(n.text, "This is the qmail-send program"); }

std::vector<DsnRecipient> qmail_read(const Notice& n) {
    std::vector<DsnRecipient> out;
    for (std::size_t i = 0; i < n.lines.size(); ++i) {
        std::string_view t = trim(n.lines[i]);
        if (is_copy_marker(t)) break;
        if (!t.starts_with('<') || !t.ends_with(">:") || !plain_address(t.substr(1, t.size() - 3))) continue;
        std::string address(t.substr(1, t.size() - 3)), said, other, remote;
        bool saying = false;
        for (++i; i < n.lines.size() && !trim(n.lines[i]).empty(); ++i) {
            std::string_view l = trim(n.lines[i]);
            if (l.starts_with("Remote host said: ")) {
                saying = true;
                l.remove_prefix(18);
            } else if (l.starts_with("Giving up on ")) {
                remote = std::string(trim(l.substr(13), ". "));
                saying = false;
                continue;
            }
            (saying ? said : other) += std::string(l) + " ";
        }
        out.push_back(recipient(std::move(address), said.empty() ? other : said, remote, n));
    }
    return out;
}

// ---- Exchange and Office 365: the recipients' list, and "Remote Server returned '...'" per address.

bool exchange_knows(const Notice& n) {
    return contains_nocase(n.text, "Delivery has failed to these recipients or groups") ||
           contains_nocase(n.text, "Delivery is delayed to these recipients or groups") ||
           contains_nocase(n.text, "The following recipient(s) cannot be reached");
}

// "user@x.test", "user@x.test<mailto:user@x.test>", "Name (user@x.test)",
// "user@x.test on 1/2/2026 ...": the address a line starts with; "" when it starts otherwise.
std::string lead_address(std::string_view t) {
    std::string_view first = t.substr(0, t.find(' '));
    if (first.find('@') != npos) return find_address(first);
    std::size_t open = t.find('('), close = t.rfind(')');
    if (open != npos && close == t.size() - 1 && close > open) {
        std::string_view inner = t.substr(open + 1, close - open - 1);
        if (inner.find(' ') == npos) return find_address(inner);
    }
    return "";
}

// Also true when the list is full: a reader adds no more.
bool has_recipient(const std::vector<DsnRecipient>& list, std::string_view address) {
    if (list.size() >= kMaxDsnRecipients) return true;
    return std::any_of(list.begin(), list.end(), [&](const DsnRecipient& r) { return r.final_recipient == address; });
}

std::vector<DsnRecipient> exchange_read(const Notice& n) {
    std::vector<DsnRecipient> out;
    // For administrators: each address, then what its server said.
    if (std::size_t d = find_line(n.lines, "Diagnostic information for administrators"); d != npos) {
        std::string current;
        for (std::size_t i = d + 1; i < n.lines.size() && !is_copy_marker(n.lines[i]); ++i) {
            std::string_view t = trim(n.lines[i]);
            if (std::string a = lead_address(t); !a.empty()) {
                current = a;
            } else if (!current.empty() && (contains_nocase(t.substr(0, 22), "Remote Server returned") || t.starts_with('#'))) {
                std::string_view said = t;
                if (std::size_t q = t.find('\''); q != npos && t.rfind('\'') > q) said = t.substr(q + 1, t.rfind('\'') - q - 1);
                else said = trim(said, "# ");  // "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##"
                if (!has_recipient(out, current)) out.push_back(recipient(current, said, "", n));
                current.clear();
            }
        }
    }
    // The list for users: each address, with the lines that explain it.
    std::size_t s = find_line(n.lines, "these recipients or groups");
    if (s == npos) s = find_line(n.lines, "cannot be reached");
    for (std::size_t i = s + 1; s != npos && i < n.lines.size(); ++i) {
        std::string_view t = trim(n.lines[i]);
        if (is_copy_marker(t) || contains_nocase(t, "Diagnostic information for administrators")) break;
        std::string a = lead_address(t);
        if (a.empty()) continue;
        std::size_t end = i + 1;
        while (end < n.lines.size() && !trim(n.lines[end]).empty() && lead_address(trim(n.lines[end])).empty()) ++end;
        if (!has_recipient(out, a)) out.push_back(recipient(a, joined(n.lines, i + 1, end), "", n));
        i = end - 1;
    }
    return out;
}

// ---- Any other bounce: an address and an enhanced status code on one line, or on two lines together.

// A bounce comes from the mail system (MAILER-DAEMON, postmaster), or with
// the null envelope sender and a subject that says it is one: a person's
// mail that only mentions a code and an address is neither.
bool generic_knows(const Notice& n) {
    std::string from = to_lower(n.from);
    if (from.find("mailer-daemon@") != npos || from.find("postmaster@") != npos ||
        from.find("mail-daemon@") != npos)
        return true;
    if (!n.null_sender) return false;
    bool says = false;
    for (std::string_view s : {"undeliver", "delivery status notification", "returned mail", "failure notice",
                               "delivery failure", "not delivered", "delivery failed", "delivery has failed",
                               "could not be delivered", "mail delivery"})
        if (contains_nocase(n.subject, s)) says = true;
    return says;
}

std::vector<DsnRecipient> generic_read(const Notice& n) {
    std::vector<DsnRecipient> out;
    std::string own = to_lower(find_address(n.to));
    for (std::size_t i = 0; i < n.lines.size(); ++i) {
        std::string_view t = trim(n.lines[i]);
        if (is_copy_marker(t) || t.starts_with("Received:") || t.starts_with("Return-Path:")) break;
        std::string a = find_address(t);
        if (a.empty() || to_lower(a) == own) continue;
        std::string text(t);
        std::string code = find_enhanced_code(t);
        if (code.empty() && i + 1 < n.lines.size()) {
            text += " " + std::string(trim(n.lines[i + 1]));
            code = find_enhanced_code(n.lines[i + 1]);
        }
        if (code.empty() || code[0] == '2' || has_recipient(out, a)) continue;
        DsnRecipient r = recipient(a, text, "", n);
        if (code[0] == '4') r.action = "delayed";
        out.push_back(std::move(r));
    }
    return out;
}

// The header section a text bounce copies after one of its marker lines.
std::string copied_headers(const Lines& lines) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!is_copy_marker(lines[i])) continue;
        std::size_t b = i + 1;
        while (b < lines.size() && trim(lines[b]).empty()) ++b;
        std::size_t colon = b < lines.size() ? lines[b].find(':') : npos;
        if (colon == npos || colon == 0 || lines[b].substr(0, colon).find(' ') != npos) return "";
        std::string out;
        for (std::size_t k = b; k < lines.size() && !lines[k].empty(); ++k) out += std::string(lines[k]) + "\n";
        return out;
    }
    return "";
}

struct Reader {
    const char* format;
    bool (*knows)(const Notice&);
    std::vector<DsnRecipient> (*read)(const Notice&);
};

constexpr Reader kReaders[] = {
    {"postfix", postfix_knows, postfix_read},   {"exim", exim_knows, exim_read},
    {"qmail", qmail_knows, qmail_read},         {"exchange", exchange_knows, exchange_read},
    {"generic", generic_knows, generic_read},
};

}  // namespace

std::optional<DsnReport> read_text_bounce(const mime::MessageParts& parts) {
    Notice n = notice_of(parts);
    for (const Reader& r : kReaders) {
        if (!r.knows(n)) continue;
        auto recipients = r.read(n);
        if (recipients.empty()) continue;
        DsnReport report;
        report.format = r.format;
        report.recipients = std::move(recipients);
        if (report.recipients.size() > kMaxDsnRecipients) report.recipients.resize(kMaxDsnRecipients);
        report.original_message_headers = copied_headers(n.lines);
        return report;
    }
    return std::nullopt;
}

}  // namespace mxlane::report
