// The runtime's configuration from GONET_* environment variables (set by `gonet run`, or by
// hand). A bad value is reported once on stderr and ignored; the launcher validates the same
// values before starting the program, so under `gonet run` that never happens.
#pragma once

#include "core/base/mode.h"

namespace gonet::core {

void LoadConfigFromEnv(Config* out);

}  // namespace gonet::core
