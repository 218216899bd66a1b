// recipient_token: the short signed token that names one recipient of one job (VERP, List-Unsubscribe).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mxlane {

// Which recipient a token names: its job and its seq within the job (make_seq).
struct RecipientRef {
    std::uint64_t job_id = 0, seq = 0;
    bool operator==(const RecipientRef&) const = default;
};

// Lower-case base32 (RFC 4648 alphabet, no padding) of the job id and the seq
// as LEB128 varints followed by the first 10 bytes of HMAC-SHA256 under the
// loop key (loop_key()) over "mxlane recipient token v1" and those varint
// bytes: 20 characters for small ids, at most 48. Safe in a URL path and in a
// local part, and it survives MTAs that lower-case local parts. Throws
// LoopKeyError when the key cannot be read.
std::string recipient_token_make(const std::string& queue_directory, RecipientRef ref);

// The recipient a token names, in any letter case; nullopt for anything
// malformed, non-canonical or forged. Throws LoopKeyError when the key cannot
// be read (the caller then fails safe rather than taking the token as forged).
std::optional<RecipientRef> recipient_token_check(const std::string& queue_directory, std::string_view token);

// base LOCAL@DOMAIN with the token put after the delimiter in its local part:
// ("bounces@shop.test", "+", T) -> "bounces+T@shop.test".
std::string tagged_address(const std::string& base, const std::string& delimiter, const std::string& token);

// The token of an address LOCAL+TOKEN@DOMAIN (surrounding <> allowed) whose
// LOCAL@DOMAIN equals base in any letter case; "" for any other address.
std::string token_of(const std::string& address, const std::string& base, const std::string& delimiter);

}  // namespace mxlane
