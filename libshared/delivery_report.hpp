// delivery_report: what arrives after delivery, read: DSNs and bounces, feedback-loop complaints, fields of the reported message.
#pragma once
#include <string>
#include <string_view>

#include "libshared/arf_report.hpp"
#include "libshared/dsn_report.hpp"

namespace mxlane {

// A header field of a header section (first occurrence, unfolded, trimmed),
// e.g. to find the reported message's Return-Path, List-Unsubscribe or
// X-Mxlane-* field; "" when absent. Names compare without regard to case.
std::string header_field(std::string_view header_section, std::string_view name);

}  // namespace mxlane
