#include "core/base/mode.h"

#include <cstring>

namespace gonet::core {

RunMode g_mode = RunMode::kOff;
__thread int t_core_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace internal {
Config g_config;
}  // namespace internal
using internal::g_config;

void SetConfig(const Config& c) {
  g_config = c;
  g_mode = c.mode;
}

const char* ModeName(RunMode mode) {
  switch (mode) {
    case RunMode::kThreads:
      return "threads";
    case RunMode::kFibers:
      return "fibers";
    case RunMode::kPassthrough:
      return "passthrough";
    case RunMode::kOff:
      break;
  }
  return "off";
}

bool ParseMode(const char* text, RunMode* out) {
  if (strcmp(text, "threads") == 0) {
    *out = RunMode::kThreads;
  } else if (strcmp(text, "fibers") == 0) {
    *out = RunMode::kFibers;
  } else if (strcmp(text, "passthrough") == 0) {
    *out = RunMode::kPassthrough;
  } else {
    return false;
  }
  return true;
}

}  // namespace gonet::core
