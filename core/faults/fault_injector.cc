#include "core/faults/fault_injector.h"

#include <cstdio>
#include <limits>

namespace gonet::core {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a strong 64-bit mixer, so consecutive match indexes
// give independent-looking draws.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool PortMatches(const FaultRule& rule, FaultOp op, FaultPorts ports) {
  if (rule.port == 0) return true;
  switch (op) {
    case FaultOp::kConnect:
      return ports.peer == rule.port;
    case FaultOp::kAccept:
      return ports.local == rule.port;
    case FaultOp::kSocket:
      return false;  // refused by the parser; a socket has no port yet
    default:
      return ports.local == rule.port || ports.peer == rule.port;
  }
}

}  // namespace

void FaultInjector::Install(const FaultSpecList& specs, uint64_t seed) noexcept {
  specs_ = specs;
  seed_ = seed;
  uint32_t mask = 0;
  uint32_t ports = 0;
  for (size_t i = 0; i < specs_.size; ++i) {
    mask |= OpBit(specs_.rules[i].op);
    if (specs_.rules[i].port != 0) ports |= OpBit(specs_.rules[i].op);
  }
  port_mask_.store(ports, std::memory_order_relaxed);
  for (auto& m : matches_) m.store(0, std::memory_order_relaxed);
  for (auto& c : errors_) c.store(0, std::memory_order_relaxed);
  for (auto& c : delays_) c.store(0, std::memory_order_relaxed);
  op_mask_.store(mask, std::memory_order_release);  // publishes specs_ and seed_
}

ParseError FaultInjector::Configure(std::string_view specs, uint64_t seed) noexcept {
  FaultSpecResult parsed = ParseFaultSpecs(specs);
  if (parsed.ok()) Install(parsed.specs, seed);
  return parsed.error;
}

bool FaultInjector::Fires(size_t rule_index, uint64_t match_index) const noexcept {
  const FaultRule& rule = specs_.rules[rule_index];
  switch (rule.trigger) {
    case FaultTrigger::kEveryCall:
      return true;
    case FaultTrigger::kFirstN:
      return match_index < rule.count;
    case FaultTrigger::kAfterK:
      return match_index >= rule.count;
    case FaultTrigger::kProbability: {
      if (rule.probability >= 1) return true;
      // A uniform draw in [0, 1) with 53 bits, the precision of the double it is compared to.
      uint64_t bits = SplitMix64(SplitMix64(seed_ ^ SplitMix64(rule_index)) + match_index);
      double draw = static_cast<double>(bits >> 11) * 0x1.0p-53;
      return draw < rule.probability;
    }
  }
  return false;
}

FaultDecision FaultInjector::DecideSlow(FaultOp op, FaultPorts ports) noexcept {
  FaultDecision d;
  // Pairs with Install's release store: the rules below are the ones it published.
  if ((op_mask_.load(std::memory_order_acquire) & OpBit(op)) == 0) return d;
  for (size_t i = 0; i < specs_.size; ++i) {
    const FaultRule& rule = specs_.rules[i];
    if (rule.op != op || !PortMatches(rule, op, ports)) continue;
    uint64_t k = matches_[i].fetch_add(1, std::memory_order_relaxed);
    if (!Fires(i, k)) continue;
    if (rule.err == 0) {
      constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
      d.delay_ns = rule.delay_ns > kMax - d.delay_ns ? kMax : d.delay_ns + rule.delay_ns;
    } else if (d.err == 0) {
      d.err = rule.err;
    }
  }
  if (d.err != 0) errors_[Index(op)].fetch_add(1, std::memory_order_relaxed);
  if (d.delay_ns != 0) delays_[Index(op)].fetch_add(1, std::memory_order_relaxed);
  return d;
}

size_t FaultInjector::FormatInjections(char* buf, size_t cap) const noexcept {
  if (cap == 0) return 0;
  size_t len = 0;
  buf[0] = '\0';
  uint32_t mask = op_mask_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kFaultOpCount; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    int n = snprintf(buf + len, cap - len, "  fault %-8s %llu failed, %llu delayed\n",
                     FaultOpName(static_cast<FaultOp>(i)),
                     static_cast<unsigned long long>(errors_[i].load(std::memory_order_relaxed)),
                     static_cast<unsigned long long>(delays_[i].load(std::memory_order_relaxed)));
    if (n < 0 || static_cast<size_t>(n) >= cap - len) {
      buf[len] = '\0';  // drop a line that does not fit whole
      break;
    }
    len += static_cast<size_t>(n);
  }
  return len;
}

}  // namespace gonet::core
