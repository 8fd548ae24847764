// Deterministic payloads shared by the sample servers and blocking_client, so a reader can check
// every byte it receives without having been told what the writer sent.
#pragma once

#include <cstddef>
#include <cstdint>

namespace examples {

// The period is prime so that a payload shifted by a whole number of buffers, or another
// stream's payload, does not verify by accident.
inline constexpr std::size_t kPatternPeriod = 251;

// Byte `i` of the stream identified by `seed` (an HTTP body uses seed 0; an echo request mixes
// its connection and request numbers into the seed so cross-talk between connections shows).
inline std::uint8_t PatternByte(std::uint64_t seed, std::uint64_t i) {
  return static_cast<std::uint8_t>((seed + i) % kPatternPeriod);
}

inline void FillPattern(std::uint64_t seed, std::uint64_t offset, std::uint8_t* out,
                        std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) out[i] = PatternByte(seed, offset + i);
}

}  // namespace examples
