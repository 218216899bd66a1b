// recipient_file: a submit recipients CSV: its header, a checking pass, and rows streamed in batches.
#include "qrunner/ctl/recipient_file.hpp"

#include <algorithm>
#include <fstream>
#include <unordered_set>

#include "libshared/address.hpp"
#include "libshared/csv.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/progress.hpp"
#include "qrunner/smtp/message_data.hpp"

namespace mxlane::ctl {
namespace {

// The open file and the meaning of its columns, shared by both passes.
class Reader {
public:
    explicit Reader(const std::string& path) : path_(path), in_(path, std::ios::binary), csv_(in_) {
        if (!in_) throw UsageError(path + ": cannot open the recipients file");
        read_header();
    }

    // The next row as a recipient; false at the end. Throws UsageError naming FILE:LINE.
    bool next(store::NewRecipient& r) {
        if (!read_row()) return false;
        if (row_.size() != columns_) fail(std::to_string(row_.size()) + " fields, but the header has " +
                                          std::to_string(columns_));
        r.address = strip_brackets(cell(row_[0]));
        if (!valid_address(r.address)) fail("not a valid address: " + row_[0]);
        r.fields.clear();
        for (std::size_t i = first_field_; i < row_.size(); ++i) r.fields.push_back(cell(row_[i]));
        return true;
    }

    std::string address_column;
    std::vector<std::string> field_names;

    [[noreturn]] void fail(const std::string& what) const {
        throw UsageError(path_ + ":" + std::to_string(csv_.line()) + ": " + what);
    }

private:
    // Export writes every cell csv_inert() (no formulas for spreadsheets): read back, they are what was stored.
    std::string cell(const std::string& text) const { return exported_ ? csv_uninert(text) : text; }

    bool read_row() {
        try {
            return csv_.next(row_);
        } catch (const CsvError& e) {
            throw UsageError(path_ + ":" + std::to_string(e.line()) + ": " + e.reason());
        }
    }

    void read_header() {
        if (!read_row()) throw UsageError(path_ + ":1: empty list: no header row and no recipients");
        columns_ = row_.size();
        address_column = trim(row_[0]);
        auto exported_as = [&](std::size_t n) {
            return row_.size() >= n && std::equal(kExportColumns.begin() + 1, kExportColumns.begin() + n, row_.begin() + 1);
        };
        exported_ = exported_as(kExportColumnsBefore);
        // The fixed columns of this export (older ones have fewer); the fields follow them.
        first_field_ = 1;
        for (std::size_t n = kExportColumns.size(); exported_ && n >= kExportColumnsBefore && first_field_ == 1; --n)
            if (exported_as(n)) first_field_ = n;
        std::unordered_set<std::string> seen;
        for (std::size_t i = first_field_; i < row_.size(); ++i) {
            std::string name(trim(cell(row_[i])));
            if (name.empty()) fail("column " + std::to_string(i + 1) + " has no name");
            if (name == "address" || name == address_column)
                fail("column " + std::to_string(i + 1) + " is named \"" + name + "\", which means the address");
            if (!seen.insert(name).second) fail("two columns are named \"" + name + "\"");
            field_names.push_back(name);
        }
    }

    std::string path_;
    std::ifstream in_;
    CsvReader csv_;
    std::vector<std::string> row_;
    std::size_t columns_ = 0, first_field_ = 1;
    bool exported_ = false;
};

}  // namespace

RecipientFileFacts RecipientFile::check(Progress& progress) const {
    Reader reader(path_);
    RecipientFileFacts facts{reader.address_column, reader.field_names};
    store::NewRecipient r;
    while (reader.next(r)) {
        ++facts.rows;
        progress.step();
        facts.utf8_addresses = facts.utf8_addresses || smtp::has_eight_bit(r.address);
        for (const auto& f : r.fields) facts.eight_bit_fields = facts.eight_bit_fields || smtp::has_eight_bit(f);
    }
    if (facts.rows == 0) reader.fail("empty list: no recipients after the header");
    return facts;
}

void RecipientFile::each_batch(std::size_t batch_size,
                               const std::function<void(std::span<const store::NewRecipient>)>& batch) const {
    Reader reader(path_);
    std::vector<store::NewRecipient> rows(batch_size);
    std::size_t n = 0;
    while (reader.next(rows[n]))
        if (++n == batch_size) {
            batch(std::span(rows.data(), n));
            n = 0;
        }
    if (n) batch(std::span(rows.data(), n));
}

}  // namespace mxlane::ctl
