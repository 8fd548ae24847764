// Durations in configuration text: "0", "250ms", "30s", "1.5s", "2m", "1h30m", "100us", "500ns".
//
// The syntax is Go's time.ParseDuration, so a gonet option reads like the Go deadline it stands
// for: one or more decimal numbers, each with an optional fraction and a unit
// (ns, us or µs, ms, s, m, h). A unit is required except for a bare "0".
// Unlike Go, negative durations are refused: every gonet duration is a timeout or a delay.
// The result is exact in integer nanoseconds (fractions below 1ns are truncated) and must fit
// in int64 (about 292 years).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base/parse_error.h"

namespace gonet::core {

struct DurationResult {
  int64_t ns = 0;    // the duration, when ok()
  ParseError error;  // why the text was refused, naming the bad part
  bool ok() const noexcept { return !error.failed(); }
};

// ParseDuration never allocates and never throws; it may run in the preloaded library's
// constructor.
[[nodiscard]] DurationResult ParseDuration(std::string_view text) noexcept;

// FormatDuration writes `ns` as Go's Duration.String does ("1h2m3.5s", "1.5ms", "0s") into
// `out` (NUL-terminated, truncated to `size`). Returns `out`. kFormattedDurationSize is enough
// for any int64.
inline constexpr size_t kFormattedDurationSize = 32;
const char* FormatDuration(int64_t ns, char* out, size_t size) noexcept;

}  // namespace gonet::core
