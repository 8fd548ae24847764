// Fault specs: which socket calls fail or slow down on purpose, after Go's net/internal/socktest.
//
// GONET_FAULT holds one or more specs separated by ';' (empty specs are ignored):
//
//   OP:ERRNO[:TRIGGER][:port=PORT]            the call fails with ERRNO
//   OP:delay=DURATION[:TRIGGER][:port=PORT]   the call is delayed, then runs
//
//   OP       socket, connect, accept, read (the whole recv family: read, readv, recv,
//            recvfrom, recvmsg), write (the send family), close
//   ERRNO    a name glibc knows (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, EMFILE, ...),
//            any case, or its number
//   TRIGGER  at most one of
//              p=PROB    inject with probability PROB in [0, 1], drawn from a PRNG seeded by
//                        GONET_FAULT_SEED: the same seed gives the same choices
//              n=COUNT   inject on the first COUNT matching calls only (COUNT >= 1)
//              after=K   let the first K matching calls through, inject on every later one
//            no trigger: inject on every matching call
//   PORT     1..65535: the peer port for connect, the local (listening) port for accept,
//            either for read, write and close; socket takes no port (it has none yet)
//
// A "matching call" is one whose op (and port, if given) match the spec; each spec counts its
// own matching calls. Examples:
//   connect:ECONNREFUSED:p=0.1
//   read:ECONNRESET:after=3:port=6379
//   accept:EMFILE:n=2;write:delay=50ms:p=0.5
//
// This file only parses; core/faults/fault_injector.h decides, per call, whether a spec fires.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base/parse_error.h"

namespace gonet::core {

enum class FaultOp : uint8_t { kSocket, kConnect, kAccept, kRead, kWrite, kClose };
inline constexpr size_t kFaultOpCount = 6;

// "socket", "connect", ...: the spelling used in specs and in stats.
const char* FaultOpName(FaultOp op) noexcept;

enum class FaultTrigger : uint8_t {
  kEveryCall,    // no trigger given
  kProbability,  // p=
  kFirstN,       // n=
  kAfterK,       // after=
};

struct FaultRule {
  FaultOp op = FaultOp::kSocket;
  int err = 0;           // errno to fail with; 0 when this rule delays instead
  int64_t delay_ns = 0;  // delay before the call, when err == 0
  FaultTrigger trigger = FaultTrigger::kEveryCall;
  double probability = 1;  // p=, for kProbability
  uint64_t count = 0;      // n= for kFirstN, after= for kAfterK
  uint16_t port = 0;       // 0: any port
};

// Fixed capacity, so parsing allocates nothing (it runs in the preload constructor).
inline constexpr size_t kMaxFaultRules = 32;

struct FaultSpecList {
  std::array<FaultRule, kMaxFaultRules> rules;
  size_t size = 0;
};

struct FaultSpecResult {
  FaultSpecList specs;
  ParseError error;  // names the spec and the part of it that was refused
  bool ok() const noexcept { return !error.failed(); }
};

// ParseFaultSpecs parses GONET_FAULT's value (specs separated by ';'). Never throws.
[[nodiscard]] FaultSpecResult ParseFaultSpecs(std::string_view text) noexcept;

// ParseFaultRule parses one spec (no ';'), e.g. one `gonet run --fault` argument.
[[nodiscard]] ParseError ParseFaultRule(std::string_view text, FaultRule* rule) noexcept;

// ParseFaultSeed parses GONET_FAULT_SEED: a decimal integer in [0, 2^64).
[[nodiscard]] ParseError ParseFaultSeed(std::string_view text, uint64_t* seed) noexcept;

// ErrnoFromName maps "ECONNREFUSED" (any case; aliases such as EWOULDBLOCK too) to its value,
// 0 when glibc knows no such name. ErrnoName is the reverse, "E?" for unknown values.
int ErrnoFromName(std::string_view name) noexcept;
const char* ErrnoName(int err) noexcept;

}  // namespace gonet::core
