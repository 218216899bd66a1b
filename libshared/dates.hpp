// dates: points in time as text: the RFC 5322 Date form and ISO 8601, both in UTC.
#pragma once
#include <cstdint>
#include <string>

namespace mxlane {

// "Wed, 02 Dec 2026 06:42:19 +0000" (RFC 5322 3.3) from ms since the epoch;
// English names whatever the locale.
std::string rfc5322_date(std::int64_t ms);

// "2026-11-28T19:54:06Z" from ms since the epoch; "" for 0 (never happened).
std::string iso_time(std::int64_t ms);

}  // namespace mxlane
