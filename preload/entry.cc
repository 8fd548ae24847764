// The library's entry: resolve libc's next symbols, then start the runtime. Runs inside the
// dynamic loader's start-up of the host program: nothing here may throw, and nothing may call a
// hooked function before gonet::real can answer (real.h explains the fallback).
#include "core/base/os_thread.h"
#include "core/fibers/fiber_tls.h"
#include "core/fibers/signal_route.h"
#include "core/runtime/runtime.h"
#include "shim/real.h"

namespace {

__attribute__((constructor(101))) void GonetLoad() {
  gonet::real::ResolveAll();
  gonet::core::SetOsThreadCreate(&gonet::real::pthread_create);
  gonet::core::SetRealSigaction(&gonet::real::sigaction);
  gonet::core::fiber_tls::SetRealDlopen(gonet::real::DlopenEntry());
  gonet::core::Init();
}

}  // namespace
