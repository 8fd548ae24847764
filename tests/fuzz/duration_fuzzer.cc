// ParseDuration never crashes on any text, and what it accepts survives a round trip through
// FormatDuration (Go's Duration.String) unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/base/duration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gonet::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const DurationResult d = ParseDuration(text);
  if (!d.ok()) return 0;
  if (d.ns < 0) abort();  // negative durations are refused
  char out[kFormattedDurationSize];
  const DurationResult again = ParseDuration(FormatDuration(d.ns, out, sizeof out));
  if (!again.ok() || again.ns != d.ns) abort();
  return 0;
}
