// mailbox_list: RFC 5322 address lists (From:, To:...) parsed into their mailboxes.
#include "qrunner/ctl/mailbox_list.hpp"


namespace mxlane::ctl {
namespace {

// Lexical tokens of RFC 5322 3.2: white space and comments are dropped between them.
struct Token {
    enum Kind { atom, quoted, literal, special, end } kind = end;
    std::string text;  // an atom's characters, a quoted string's content, a literal with its brackets, a special
    std::size_t at = 0;
};

bool atext(unsigned char c) {
    if (c >= 0x80) return true;  // UTF-8 (RFC 6532 3.2)
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

class Lexer {
public:
    explicit Lexer(std::string_view s) : s_(s) {}

    Token next() {
        skip_cfws();
        Token t;
        t.at = pos_;
        if (pos_ >= s_.size()) return t;
        char c = s_[pos_];
        if (c == '"') {
            t.kind = Token::quoted;
            t.text = delimited('"', "a quoted string is not closed");
        } else if (c == '[') {
            t.kind = Token::literal;
            t.text = "[" + delimited(']', "a domain literal is not closed") + "]";
        } else if (std::string_view("<>@:;,.").find(c) != std::string_view::npos) {
            t.kind = Token::special;
            t.text = std::string(1, c);
            ++pos_;
        } else if (atext(static_cast<unsigned char>(c))) {
            t.kind = Token::atom;
            while (pos_ < s_.size() && atext(static_cast<unsigned char>(s_[pos_]))) t.text += s_[pos_++];
        } else {
            fail("unexpected character", pos_);
        }
        return t;
    }

    [[noreturn]] static void fail(const std::string& what, std::size_t at) {
        throw AddressSyntaxError(what + " at character " + std::to_string(at + 1));
    }

private:
    void skip_cfws() {
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') ++pos_;
            else if (c == '(') skip_comment();
            else break;
        }
    }

    // A comment may nest and may hold quoted pairs (RFC 5322 3.2.2).
    void skip_comment() {
        std::size_t start = pos_, depth = 0;
        for (; pos_ < s_.size(); ++pos_) {
            char c = s_[pos_];
            if (c == '\\') ++pos_;
            else if (c == '(') ++depth;
            else if (c == ')' && --depth == 0) {
                ++pos_;
                return;
            }
        }
        fail("a comment is not closed", start);
    }

    // From after the opening delimiter to the closing one, quoted pairs unescaped.
    std::string delimited(char close, const char* unclosed) {
        std::size_t start = pos_++;
        std::string out;
        for (; pos_ < s_.size(); ++pos_) {
            char c = s_[pos_];
            if (c == '\\' && pos_ + 1 < s_.size()) out += s_[++pos_];
            else if (c == close) {
                ++pos_;
                return out;
            } else if (c != '\r' && c != '\n') out += c;  // folding inside is white space
        }
        fail(unclosed, start);
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

class Parser {
public:
    explicit Parser(std::string_view value) : lex_(value) { advance(); }

    std::vector<Mailbox> address_list() {
        while (!at_end()) {
            if (is(",")) {  // empty list elements (obs-addr-list, RFC 5322 4.4)
                advance();
                continue;
            }
            address();
            if (!at_end()) expect(",", "expected ',' between addresses");
        }
        return std::move(out_);
    }

private:
    // mailbox / group: a phrase, then what follows it decides.
    void address() {
        std::size_t start = tok_.at;
        std::vector<Token> words = phrase();
        if (is("<")) {
            out_.push_back({display(words), angle_addr()});
        } else if (is(":")) {
            if (words.empty()) Lexer::fail("a group has no name", start);
            advance();
            group_members();
        } else if (is("@")) {
            out_.push_back({"", addr_spec_after(words, start)});
        } else {
            Lexer::fail(words.empty() ? "expected an address" : "a name without an address", start);
        }
    }

    // After "name:": mailboxes up to ';' (RFC 5322 3.4 group; no nested groups).
    void group_members() {
        for (;;) {
            if (is(";")) {
                advance();
                return;
            }
            if (at_end()) Lexer::fail("a group is not closed with ';'", tok_.at);
            if (is(",")) {
                advance();
                continue;
            }
            std::size_t start = tok_.at;
            std::vector<Token> words = phrase();
            if (is("<")) out_.push_back({display(words), angle_addr()});
            else if (is("@")) out_.push_back({"", addr_spec_after(words, start)});
            else Lexer::fail("expected a mailbox in the group", start);
            if (!is(";")) expect(",", "expected ',' or ';' in the group");
        }
    }

    // Words and dots (a phrase, or the local part of an addr-spec).
    std::vector<Token> phrase() {
        std::vector<Token> words;
        while (tok_.kind == Token::atom || tok_.kind == Token::quoted || is(".")) {
            words.push_back(tok_);
            advance();
        }
        return words;
    }

    std::string angle_addr() {
        std::size_t start = tok_.at;
        advance();  // '<'
        if (is("@")) Lexer::fail("source routes are not accepted", tok_.at);
        std::vector<Token> local = phrase();
        if (!is("@")) Lexer::fail("no '@' in the address in <...>", start);
        std::string a = addr_spec_after(local, start);
        expect(">", "the address in <...> is not closed with '>'");
        return a;
    }

    // local "@" domain, with the local part's words already read and tok_ at '@'.
    std::string addr_spec_after(const std::vector<Token>& local, std::size_t start) {
        std::string lp = local_part(local, start);
        advance();  // '@'
        std::string domain;
        if (tok_.kind == Token::literal) {
            domain = tok_.text;
            advance();
        } else {
            for (;;) {
                if (tok_.kind != Token::atom) Lexer::fail("expected a domain", tok_.at);
                domain += tok_.text;
                advance();
                if (!is(".")) break;
                domain += '.';
                advance();
            }
        }
        return lp + "@" + domain;
    }

    // dot-atom or quoted-string (RFC 5322 3.4.1); a quoted one keeps its quotes
    // unless its content is a dot-atom anyway ("ann"@x is ann@x).
    static std::string local_part(const std::vector<Token>& words, std::size_t start) {
        if (words.size() == 1 && words[0].kind == Token::quoted) {
            const std::string& q = words[0].text;
            if (is_dot_atom(q)) return q;
            std::string out = "\"";
            for (char c : q) {
                if (c == '"' || c == '\\') out += '\\';
                out += c;
            }
            return out + "\"";
        }
        std::string lp;
        bool want_atom = true;
        for (const Token& w : words) {
            if (w.kind != (want_atom ? Token::atom : Token::special))
                Lexer::fail("a local part must be dot-separated atoms or one quoted string", start);
            lp += w.text;
            want_atom = !want_atom;
        }
        if (lp.empty() || want_atom) Lexer::fail("the local part is empty or ends with '.'", start);
        return lp;
    }

    static bool is_dot_atom(std::string_view s) {
        if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
        for (char c : s)
            if (c != '.' && !atext(static_cast<unsigned char>(c))) return false;
        return true;
    }

    static std::string display(const std::vector<Token>& words) {
        std::string out;
        for (const Token& w : words) {
            if (!out.empty() && w.text != "." && out.back() != '.') out += ' ';
            out += w.text;
        }
        return out;
    }

    bool is(std::string_view special) const { return tok_.kind == Token::special && tok_.text == special; }
    bool at_end() const { return tok_.kind == Token::end; }
    void advance() { tok_ = lex_.next(); }
    void expect(std::string_view special, const char* what) {
        if (!is(special)) Lexer::fail(what, tok_.at);
        advance();
    }

    Lexer lex_;
    Token tok_;
    std::vector<Mailbox> out_;
};

}  // namespace

std::vector<Mailbox> parse_address_list(std::string_view value) { return Parser(value).address_list(); }

}  // namespace mxlane::ctl
