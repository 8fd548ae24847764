// Shared set-up for the fibers-mode unit tests: run core in fibers mode with two workers, spawn
// fibers without the pthread shim, and wait for observable state.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>

#include "core/base/base.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/runtime/runtime.h"
#include "tests/unit/wait_util.h"

namespace gonet::core::fibertest {

using testing_util::kMs;
constexpr int64_t kHangNs = 60000 * kMs;  // hang detector only, never a pass/fail threshold

// The fiber tests run under ThreadSanitizer and AddressSanitizer too: core/fibers/fiber.cc announces
// every stack switch to them. (Kept as a hook, should a sanitizer ever need skipping again.)
#define GONET_SKIP_UNDER_SANITIZER() (void)0

inline void StartFibersMode(int workers = 2) {
  static bool once = [workers] {
    Config c;
    c.mode = RunMode::kFibers;
    c.workers = workers;
    c.threads_wait_kernel = false;
    InitForTest(c);
    return FiberScheduler::EnsureStarted();
  }();
  ASSERT_TRUE(once);
}

// Runs fn on a new fiber; returns its task (join it with Join).
inline FiberTask* Go(std::function<void()> fn) {
  auto* heap = new std::function<void()>(std::move(fn));
  FiberTask* t = nullptr;
  int r = FiberScheduler::Spawn(
      0,
      [](void* arg) -> void* {
        // Owned by this frame: a fiber that leaves by pthread_exit or cancellation (a forced
        // unwind) frees it too.
        std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
        (*f)();
        return nullptr;
      },
      heap, false, &t);
  EXPECT_EQ(r, 0);
  return t;
}

template <typename Pred>
bool WaitUntil(Pred pred) {
  return testing_util::WaitUntil(pred, kHangNs);
}

}  // namespace gonet::core::fibertest
