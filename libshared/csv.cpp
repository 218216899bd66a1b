// csv: RFC 4180 records read from and written to streams, one record at a time.
#include "libshared/csv.hpp"

namespace mxlane {

int CsvReader::get() {
    int c = in_.rdbuf()->sbumpc();
    if (c == '\n') ++line_;
    return c;
}

void CsvReader::add_char(std::string& field, char c) {
    if (++record_size_ > max_record_)
        throw CsvError(record_line_, "record longer than " + std::to_string(max_record_) + " bytes (a quote not closed?)");
    field += c;
}

// After the opening quote: up to the closing one, then what must follow it.
bool CsvReader::read_quoted(std::string& field) {
    for (;;) {
        int c = get();
        if (c == EOF) throw CsvError(record_line_, "a quoted field is not closed");
        if (c != '"') {
            add_char(field, static_cast<char>(c));
            continue;
        }
        int after = in_.rdbuf()->sgetc();
        if (after == '"') {
            get();
            add_char(field, '"');
            continue;
        }
        if (after == ',') {
            get();
            return true;
        }
        if (after == '\r') get(), after = in_.rdbuf()->sgetc();
        if (after == '\n' || after == EOF) {
            get();
            return false;
        }
        throw CsvError(record_line_, "text after a closing quote");
    }
}

bool CsvReader::next(std::vector<std::string>& fields) {
    fields.clear();
    if (!started_) {
        started_ = true;
        static const std::string bom = "\xEF\xBB\xBF";
        if (in_.rdbuf()->sgetc() == static_cast<unsigned char>(bom[0])) {
            std::string head;
            for (int i = 0; i < 3 && in_.rdbuf()->sgetc() == static_cast<unsigned char>(bom[i]); ++i)
                head += static_cast<char>(get());
            if (head != bom) fields.emplace_back(head);  // not a BOM after all: data
        }
    }
    // Empty lines between records carry nothing.
    for (int c = in_.rdbuf()->sgetc(); fields.empty() && (c == '\n' || c == '\r'); c = in_.rdbuf()->sgetc()) get();
    if (fields.empty() && in_.rdbuf()->sgetc() == EOF) return false;
    record_line_ = line_;
    record_size_ = 0;
    if (fields.empty()) fields.emplace_back();
    for (;;) {
        std::string& field = fields.back();
        int c = get();
        if (c == '"' && field.empty()) {
            if (read_quoted(field)) fields.emplace_back();
            else return true;
        } else if (c == ',') {
            fields.emplace_back();
        } else if (c == '\n' || c == EOF) {
            return true;
        } else if (c == '\r' && in_.rdbuf()->sgetc() == '\n') {
            // CRLF: the LF ends the record on the next turn.
        } else {
            add_char(field, static_cast<char>(c));
        }
    }
}

std::string csv_field(std::string_view value) {
    bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos ||
                 (!value.empty() && (value.front() == ' ' || value.back() == ' ' || value.front() == '\t' ||
                                     value.back() == '\t'));
    if (!quote) return std::string(value);
    std::string out = "\"";
    for (char c : value) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string csv_inert(std::string_view value) {
    bool formula = !value.empty() && std::string_view("=+-@\t\r'").find(value.front()) != std::string_view::npos;
    return formula ? "'" + std::string(value) : std::string(value);
}

std::string csv_uninert(std::string_view value) {
    if (value.starts_with('\'')) value.remove_prefix(1);
    return std::string(value);
}

void write_csv_record(std::ostream& out, const std::vector<std::string>& fields, CsvCells cells) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i) out << ',';
        out << csv_field(cells == CsvCells::inert ? csv_inert(fields[i]) : fields[i]);
    }
    out << "\r\n";
}

}  // namespace mxlane
