// The symbolic name of an errno value ("ECONNREFUSED"), so that client output can be diffed
// between a native run and a preloaded run without depending on the locale's strerror text.
#pragma once

#include <string>

namespace examples {

// Returns e.g. "ECONNREFUSED" for ECONNREFUSED, or "errno=N" for a value glibc cannot name.
std::string ErrnoName(int err);

}  // namespace examples
