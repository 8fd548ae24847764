// Fiber stacks (core/fibers/fiber_stack.h): a guard page below each, and reuse through the pool.
#include "core/fibers/fiber_stack.h"

#include <gtest/gtest.h>

#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

TEST(FiberStack, HasAGuardPageBelowTheUsableBytes) {
  FiberStack s = FiberStackPool::Get(64 * 1024);
  ASSERT_NE(s.base, nullptr);
  EXPECT_GE(s.usable(), 64u * 1024);
  EXPECT_TRUE(s.InGuard(s.base));
  EXPECT_FALSE(s.InGuard(static_cast<char*>(s.top()) - 1));
  // The usable bytes are writable end to end.
  static_cast<char*>(s.top())[-1] = 1;
  static_cast<char*>(s.top())[-static_cast<long>(s.usable())] = 1;
  FiberStackPool::Put(s);
}

TEST(FiberStack, AReturnedStackIsReusedWithoutMapping) {
  FiberStack a = FiberStackPool::Get(96 * 1024);
  ASSERT_NE(a.base, nullptr);
  FiberStackPool::Put(a);
  uint64_t mapped = FiberStackPool::mapped();
  FiberStack b = FiberStackPool::Get(96 * 1024);
  EXPECT_EQ(b.base, a.base);
  EXPECT_EQ(FiberStackPool::mapped(), mapped);
  FiberStackPool::Put(b);
}

TEST(FiberStack, FinishedFibersGiveTheirStacksBack) {
  GONET_SKIP_UNDER_SANITIZER();
  fibertest::StartFibersMode();
  // Warm the pool, then many fibers of the same size run one after another without mapping.
  ASSERT_EQ(fibertest::Go([] {})->Join(nullptr), 0);
  uint64_t mapped = FiberStackPool::mapped();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(fibertest::Go([] {})->Join(nullptr), 0);
  EXPECT_EQ(FiberStackPool::mapped(), mapped);
}

}  // namespace
}  // namespace gonet::core
