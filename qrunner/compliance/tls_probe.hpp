// tls_probe: mxlanectl check's tls rows: STARTTLS to a provider's first reachable MX, its certificate verified as delivery would.
#pragma once
#include <string>
#include <vector>

#include "qrunner/compliance/sender_check.hpp"
#include "qrunner/settings.hpp"

namespace mxlane::compliance {

// One row `tls` per domain (check_tls_domains): the MX looked up through the
// configured dns_servers, the first MX address that takes a TCP connection
// (smtp_port, Postfix's MX limits and smtp_prohibited_networks apply) asked
// for STARTTLS, and its certificate verified against smtp_tls_CAfile (the
// domain's destination policy may name another) and the MX host name.
//   pass  verified: the MX, the TLS version and cipher in detail
//   fail  no STARTTLS, STARTTLS refused, the handshake failed or the
//         certificate did not verify (the reason in detail)
//   warn  no MX known (DNS gave no answer, NXDOMAIN, null MX) or none could be
//         reached: skipped, so that check passes on a machine without Internet
// The domains are probed side by side, each step within a few seconds.
// Blocking: for mxlanectl, never for an event loop.
std::vector<CheckRow> check_tls(const qrunner::Settings& settings, const std::vector<std::string>& domains);

}  // namespace mxlane::compliance
