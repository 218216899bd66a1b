// csv: RFC 4180 records read from and written to streams, one record at a time.
#pragma once
#include <cstddef>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane {

// A malformed file; what() names the line where the bad record starts.
class CsvError : public std::runtime_error {
public:
    CsvError(std::size_t line, const std::string& reason)
        : std::runtime_error("line " + std::to_string(line) + ": " + reason), line_(line), reason_(reason) {}
    std::size_t line() const { return line_; }
    const std::string& reason() const { return reason_; }  // what() without the line

private:
    std::size_t line_;
    std::string reason_;
};

// Reads records one by one, so that a file of any length streams. Fields may be
// quoted ("a, b", "say ""hi""", line breaks inside); lines end in CRLF or LF.
// A UTF-8 byte order mark at the start is skipped (spreadsheets write one) and
// so are empty lines. A record longer than max_record bytes is an error rather
// than a reason to read the rest of the file into memory (an unclosed quote).
class CsvReader {
public:
    explicit CsvReader(std::istream& in, std::size_t max_record = 1 << 20) : in_(in), max_record_(max_record) {}
    // The next record into `fields`; false at the end of the input.
    bool next(std::vector<std::string>& fields);
    // The line the record last returned starts on (1-based).
    std::size_t line() const { return record_line_; }

private:
    int get();
    void add_char(std::string& field, char c);
    bool read_quoted(std::string& field);  // false: the record ended with the field
    std::istream& in_;
    std::size_t max_record_;
    std::size_t line_ = 1, record_line_ = 0, record_size_ = 0;
    bool started_ = false;
};

// One field as RFC 4180 wants it: quoted when it holds a comma, a quote, a line
// break, or blanks at either end; otherwise as it is.
std::string csv_field(std::string_view value);

// A cell that a spreadsheet shows as text instead of running it as a formula
// (OWASP "CSV injection"): a value starting with '=', '+', '-', '@', TAB or CR gets
// a leading '\''. So does one that starts with '\'' itself, so that csv_uninert()
// can undo it exactly: an address such as -news@example.com comes back unchanged.
std::string csv_inert(std::string_view value);
// The value csv_inert() was given: without one leading '\'', if there is one.
std::string csv_uninert(std::string_view value);

enum class CsvCells {
    as_is,  // written as they are
    inert,  // each made csv_inert() first: files for spreadsheets (export, reports)
};
// One record, fields joined by commas, ended by CRLF.
void write_csv_record(std::ostream& out, const std::vector<std::string>& fields, CsvCells cells = CsvCells::as_is);

}  // namespace mxlane
