// LoadConfigFromEnv with random GONET_* values: never crashes, and the Config it produces is
// one the runtime can use (a known mode, non-negative timeouts). The input is split on NUL
// bytes into one value per variable; a missing value leaves the variable unset.
#include <stdlib.h>

#include <cstdint>
#include <string>

#include "core/runtime/config.h"
#include "core/runtime/runtime.h"

namespace {
const char* const kVars[] = {
    "GONET_MODE",      "GONET_READ_TIMEOUT", "GONET_WRITE_TIMEOUT", "GONET_CONNECT_TIMEOUT",
    "GONET_STATS",     "GONET_THREADS_WAIT", "GONET_WORKERS",       "GONET_FAULT",
    "GONET_FAULT_SEED"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gonet::core;
  const std::string all(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  for (const char* var : kVars) {
    if (pos > all.size()) {
      unsetenv(var);
      continue;
    }
    size_t end = all.find('\0', pos);
    if (end == std::string::npos) end = all.size();
    setenv(var, all.substr(pos, end - pos).c_str(), 1);
    pos = end + 1;
  }
  Config c;
  LoadConfigFromEnv(&c);
  if (c.mode != RunMode::kThreads && c.mode != RunMode::kFibers &&
      c.mode != RunMode::kPassthrough) {
    abort();
  }
  if (c.read_timeout_ns < 0 || c.write_timeout_ns < 0 || c.connect_timeout_ns < 0) abort();
  (void)ModeName(c.mode);
  return 0;
}
