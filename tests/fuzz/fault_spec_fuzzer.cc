// ParseFaultSpecs never crashes on any GONET_FAULT text, and every rule it accepts is one the
// injector can act on: a known op, an errno or a non-negative delay (not both), a probability
// in [0, 1], a count where the trigger needs one.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/faults/fault_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gonet::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ErrnoFromName(text);
  uint64_t seed;
  (void)ParseFaultSeed(text, &seed);
  const FaultSpecResult r = ParseFaultSpecs(text);
  if (!r.ok()) return 0;
  if (r.specs.size > kMaxFaultRules) abort();
  for (size_t i = 0; i < r.specs.size; ++i) {
    const FaultRule& rule = r.specs.rules[i];
    if (static_cast<size_t>(rule.op) >= kFaultOpCount) abort();
    if (rule.err < 0 || rule.delay_ns < 0) abort();
    if ((rule.err != 0) == (rule.delay_ns != 0) && rule.err != 0) abort();
    if (rule.trigger == FaultTrigger::kProbability &&
        !(rule.probability >= 0 && rule.probability <= 1)) {
      abort();
    }
    if (rule.trigger == FaultTrigger::kFirstN && rule.count == 0) abort();
    (void)FaultOpName(rule.op);
    (void)ErrnoName(rule.err);
  }
  return 0;
}
