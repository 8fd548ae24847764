// core/runtime/: Init, configuration from the environment, the netpoller driver, the fork-child
// sequence. May include: everything (core/README.md: Layers, LOCKING).
//
// The runtime, the top of core: Init (configuration, signal handlers, the stats segment), the
// netpoller driver, and the one fork-child sequence. It wires the layers below with registration
// hooks (SetParkerLookup, SetArmHook, SetDumpAnswerer) instead of upward includes; the
// vocabulary every layer reads (RunMode, Config, Enabled, ReentryGuard) is base/mode.h.
#pragma once

#include "core/base/mode.h"

namespace gonet::core {

// Reads GONET_* from the environment (config.cc), registers the fork handlers, scans signal
// handlers. Never throws, never allocates through malloc before main: safe in a constructor.
void Init();
// For tests: run core with an explicit configuration (no environment).
void InitForTest(const Config& config);

// Threads mode: starts the thread that runs Netpoller::Poll(-1) and wakes parked threads, on the
// first arm (never at load: a program that never blocks on a socket never gets the thread).
void StartNetpollerDriver();

// Prints the stats summary to stderr (GONET_STATS=1 at exit).
void PrintStatsSummary();

}  // namespace gonet::core
