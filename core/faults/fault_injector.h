// core/faults/: fault rules (this file) and their parser (fault_spec.h); which calls they apply to
// is fd/faults.h's. May include: base/ (core/README.md: Layers, LOCKING).
//
// FaultInjector: decides, per socket call, whether a configured fault fires.
//
// The shim asks Decide(op, ports) before it runs a socket call; the answer is nothing (almost
// always), an errno to fail with instead of running the call, a delay to wait before running it,
// or both (a delay rule and an errno rule matched the same call: wait, then fail). The rules are
// parsed from GONET_FAULT by core/faults/fault_spec.h, which documents the syntax and the triggers.
//
// Cost: with no rule for `op`, Decide is one relaxed load of a bit mask and a branch, so gonet
// pays nothing for fault injection unless it was asked for.
//
// Determinism: p= draws are a pure function of (seed, rule index, how many matching calls the
// rule had seen before this one), not a shared PRNG stream. The same seed and the same sequence
// of calls give the same faults, and one rule's draws do not shift when another rule's traffic
// changes. With several threads, which call is "the k-th" depends on their interleaving.
//
// Every rule evaluates on every call that matches its op and port, so every rule's count
// advances; the first errno rule that fires (in spec order) supplies the error, and the delays
// of all delay rules that fire add up.
//
// Lifetime: the constructor is constexpr, so the runtime's instance can be a `constinit` global,
// ready (and off) before any constructor runs, including when the loader calls into the shim
// before libgonet.so's own initialisers.
//
// LOCKING: none. Install() writes the rules once, at start-up, before any Decide() (the preload
// constructor runs before the program's threads exist); it publishes them with a release store
// of op_mask_, which Decide's acquire load pairs with. Reinstalling while Decide() runs is not
// supported. Decide() touches only atomics after that: safe in any thread and in a signal
// handler, and after fork (the child inherits the counts, as it inherits every counter).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "core/base/parse_error.h"
#include "core/faults/fault_spec.h"

namespace gonet::core {

// The ports of the socket a call is on, in host byte order; 0 when unknown or unbound. A rule
// with port= never matches a call whose relevant port is unknown.
struct FaultPorts {
  uint16_t local = 0;
  uint16_t peer = 0;
};

struct FaultDecision {
  int err = 0;           // fail the call with this errno instead of running it; 0: run it
  int64_t delay_ns = 0;  // wait this long before running (or failing) the call; 0: no wait
  bool none() const noexcept { return err == 0 && delay_ns == 0; }
};

class FaultInjector {
 public:
  FaultInjector() = default;
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Install replaces the rules and zeroes every count. Start-up only (see LOCKING).
  void Install(const FaultSpecList& specs, uint64_t seed) noexcept;

  // Configure parses GONET_FAULT-style text and installs it; on a parse error nothing changes
  // and the error names the bad spec and part.
  [[nodiscard]] ParseError Configure(std::string_view specs, uint64_t seed) noexcept;

  // Decide answers for one call. Thread-safe and lock-free.
  FaultDecision Decide(FaultOp op, FaultPorts ports = {}) noexcept {
    if ((op_mask_.load(std::memory_order_relaxed) & OpBit(op)) == 0) [[likely]] {
      return {};
    }
    return DecideSlow(op, ports);
  }

  bool enabled() const noexcept { return op_mask_.load(std::memory_order_relaxed) != 0; }

  // WantsPorts says whether a rule for `op` filters by port, so the caller looks up the
  // socket's ports (getsockname/getpeername) only when a Decide would use them.
  bool WantsPorts(FaultOp op) const noexcept {
    return (port_mask_.load(std::memory_order_relaxed) & OpBit(op)) != 0;
  }

  // Injections so far, per op, for stats: calls failed with an errno, calls delayed.
  uint64_t injected_errors(FaultOp op) const noexcept {
    return errors_[Index(op)].load(std::memory_order_relaxed);
  }
  uint64_t injected_delays(FaultOp op) const noexcept {
    return delays_[Index(op)].load(std::memory_order_relaxed);
  }

  // FormatInjections writes one line per op that has rules, "  fault connect: 3 failed,
  // 0 delayed\n", into `buf` (NUL-terminated) for the exit summary and `gonet stats`.
  // No allocation. Returns the length written.
  size_t FormatInjections(char* buf, size_t cap) const noexcept;

 private:
  static size_t Index(FaultOp op) noexcept { return static_cast<size_t>(op); }
  static uint32_t OpBit(FaultOp op) noexcept { return 1u << Index(op); }
  FaultDecision DecideSlow(FaultOp op, FaultPorts ports) noexcept;
  bool Fires(size_t rule_index, uint64_t match_index) const noexcept;

  // Bit per op that has at least one rule; 0 means fault injection is off. Written by Install
  // (release), read by Decide: relaxed on the fast path, acquire before the rules are read.
  std::atomic<uint32_t> op_mask_{0};
  // Bit per op that has a rule with port=; written by Install before op_mask_ is published.
  std::atomic<uint32_t> port_mask_{0};
  // Written only by Install, before op_mask_ publishes them; read-only afterwards.
  FaultSpecList specs_;
  uint64_t seed_ = 0;
  // Matching calls each rule has seen; the k-th call's trigger depends on k.
  std::array<std::atomic<uint64_t>, kMaxFaultRules> matches_{};
  // Injections per op. Relaxed: they are counters, read for stats only.
  std::array<std::atomic<uint64_t>, kFaultOpCount> errors_{};
  std::array<std::atomic<uint64_t>, kFaultOpCount> delays_{};
};

}  // namespace gonet::core
