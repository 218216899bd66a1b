// engine: mxlane's own milter protocol engine (engine.cpp), which implements the libmilter
// calls mxlane-milter makes (smfi_register, smfi_main, smfi_getsymval...).
#pragma once

namespace mxlane::milter::engine {

// Serves one MTA connection on fd with the registered filter until the MTA quits or the
// connection ends, then closes fd. smfi_main runs it on threads that accept and serve one
// connection after another; the fuzz target calls it directly.
void serve(int fd);

}  // namespace mxlane::milter::engine
