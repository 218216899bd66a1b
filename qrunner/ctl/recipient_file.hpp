// recipient_file: a submit recipients CSV: its header, a checking pass, and rows streamed in batches.
#pragma once
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "libshared/store/queue_store.hpp"

namespace mxlane::ctl {

class Progress;

// What the checking pass learned; nothing of the rows themselves is kept.
struct RecipientFileFacts {
    std::string address_column;            // the first column's name
    std::vector<std::string> field_names;  // the personalisation columns
    std::size_t rows = 0;
    bool eight_bit_fields = false;         // some field value has a byte >= 0x80
    bool utf8_addresses = false;           // some address needs SMTPUTF8 (RFC 6531)
};

// The first row names the columns; the first column is the address, the others
// are fields. When columns 2-6 are export's status columns (state, attempts,
// last_reply, dsn, host) they are skipped, so an export can be submitted again.
class RecipientFile {
public:
    explicit RecipientFile(std::string path) : path_(std::move(path)) {}

    // Reads the whole file once and throws UsageError("FILE:LINE: ...") at the first
    // problem: a missing file, no header, no rows, a row with another number of
    // fields than the header, a malformed address, a CSV syntax error.
    RecipientFileFacts check(Progress& progress) const;

    // Reads it again, calling `batch` with up to batch_size recipients at a time.
    void each_batch(std::size_t batch_size,
                    const std::function<void(std::span<const store::NewRecipient>)>& batch) const;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace mxlane::ctl
