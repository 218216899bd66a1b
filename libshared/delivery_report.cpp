// delivery_report: what arrives after delivery, read: DSNs and bounces, feedback-loop complaints, fields of the reported message.
#include "libshared/delivery_report.hpp"

#include "libshared/header_section.hpp"

namespace mxlane {

std::string header_field(std::string_view header_section, std::string_view name) {
    auto fields = parse_header_section(header_section);
    const HeaderField* f = find_header_field(fields, name);
    return f ? f->value : "";
}

}  // namespace mxlane
