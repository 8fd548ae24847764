// Stack release (core/fibers/stack_release.cc): a long-parked fiber's stack pages below its stack
// pointer go back to the kernel, its live frames do not, and it runs deep again after it resumes;
// a pooled stack keeps only its top resident (issue 16, memory).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_stack.h"
#include "core/poll/parker.h"
#include "core/stats/stats.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::StartFibersMode;
using fibertest::WaitUntil;

constexpr int kDeepLevels = 256;  // 1 KiB a level: 256 KiB of stack touched
constexpr size_t kFiberStack = 1024 * 1024;

uintptr_t PageSize() { return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)); }

// Resident pages of [lo, hi), both rounded out to pages.
size_t Resident(uintptr_t lo, uintptr_t hi) {
  uintptr_t page = PageSize();
  lo &= ~(page - 1);
  hi = (hi + page - 1) & ~(page - 1);
  size_t resident = 0;
  unsigned char vec[1];
  for (uintptr_t a = lo; a < hi; a += page) {
    if (mincore(reinterpret_cast<void*>(a), page, vec) != 0) return SIZE_MAX;
    resident += vec[0] & 1;
  }
  return resident;
}

// Writes every byte of a 1 KiB frame per level and checks it on the way back: the sum is
// deterministic, so a frame that read back zeros or another frame's bytes changes it.
__attribute__((noinline)) uint64_t Deep(int level, uintptr_t* lowest) {
  volatile unsigned char frame[1024];
  for (size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<unsigned char>(level + i);
  uint64_t sum = 0;
  if (level > 0) {
    sum = Deep(level - 1, lowest);
  } else {
    *lowest = reinterpret_cast<uintptr_t>(&frame[0]);
  }
  for (size_t i = 0; i < sizeof frame; ++i) {
    if (frame[i] != static_cast<unsigned char>(level + i)) return 0;  // corrupted: no sum
    sum += frame[i];
  }
  return sum;
}

struct DeepFiber {
  std::atomic<bool> ran_deep{false};
  std::atomic<bool> go_on{false};
  uintptr_t lowest = 0;    // the deepest frame's address (first run)
  uintptr_t call_sp = 0;   // a local of the frame that called Deep and then parked
  uint64_t first_sum = 0;  // Deep's result before the park
  uint64_t again_sum = 0;  // and after
  bool canary_intact = false;
};

void* DeepThenPark(void* arg) {
  auto* d = static_cast<DeepFiber*>(arg);
  // Live bytes in this frame, above the stack pointer while parked: they must survive.
  volatile unsigned char canary[4096];
  for (size_t i = 0; i < sizeof canary; ++i) canary[i] = static_cast<unsigned char>(i * 7 + 1);
  d->call_sp = reinterpret_cast<uintptr_t>(&canary[0]);
  d->first_sum = Deep(kDeepLevels, &d->lowest);
  d->ran_deep.store(true);
  while (!d->go_on.load()) FiberScheduler::Current()->Park(0, WaitKind::kRestartable);
  bool intact = true;
  for (size_t i = 0; i < sizeof canary; ++i) {
    intact = intact && canary[i] == static_cast<unsigned char>(i * 7 + 1);
  }
  d->canary_intact = intact;
  uintptr_t lowest = 0;
  d->again_sum = Deep(kDeepLevels, &lowest);
  return nullptr;
}

// Issue 16: an idle connection whose thread once ran a deep call must not keep those pages.
TEST(StackRelease, ParkedFiberGivesBackPagesBelowItsStackPointerAndResumesIntact) {
  StartFibersMode();
  DeepFiber d;
  FiberTask* t = nullptr;
  ASSERT_EQ(FiberScheduler::Spawn(kFiberStack, &DeepThenPark, &d, false, &t), 0);
  ASSERT_TRUE(WaitUntil([&] { return d.ran_deep.load() && t->parked(); }));
  ASSERT_NE(d.first_sum, 0u);
  // The deep frames are well below where the fiber parked: Park's own frames take a few hundred
  // bytes below call_sp, so everything more than 64 KiB below it is dead stack.
  const uintptr_t dead_top = d.call_sp - 64 * 1024;
  ASSERT_LT(d.lowest, dead_top);
  const int64_t released_before = Stats().stack_pages_released.load();
  // A pass notes the park, the next releases it (the sysmon may be either of them).
  ASSERT_TRUE(WaitUntil([&] {
    FiberScheduler::ScanParkedStacks();
    return Resident(d.lowest, dead_top) == 0;
  }));
  EXPECT_GE(Stats().stack_pages_released.load() - released_before,
            static_cast<int64_t>((dead_top - d.lowest) / PageSize()) - 1);
  // The live frames stay: the canary's pages are still resident while the fiber is parked.
  EXPECT_GT(Resident(d.call_sp, d.call_sp + 4096), 0u);

  d.go_on.store(true);
  t->Unpark();
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_TRUE(d.canary_intact);
  EXPECT_EQ(d.again_sum, d.first_sum);
}

// Runs deep, parks, and again, `rounds` times: each park is a new one, so each is released.
struct RepeatFiber {
  int rounds = 0;
  std::atomic<int> parked_round{0};  // the round whose deep call ran before this park
  std::atomic<int> go_round{0};      // the test lets round n+1 run by storing n
  uintptr_t lowest = 0;
  uintptr_t call_sp = 0;
  std::atomic<int> bad_sums{0};
};

void* DeepParkRepeat(void* arg) {
  auto* r = static_cast<RepeatFiber*>(arg);
  volatile unsigned char here = 0;
  r->call_sp = reinterpret_cast<uintptr_t>(&here);
  uint64_t expect = 0;
  for (int round = 1; round <= r->rounds; ++round) {
    uint64_t sum = Deep(kDeepLevels, &r->lowest);
    if (round == 1) expect = sum;
    if (sum == 0 || sum != expect) r->bad_sums.fetch_add(1);
    r->parked_round.store(round);
    while (r->go_round.load() < round) FiberScheduler::Current()->Park(0, WaitKind::kRestartable);
  }
  return nullptr;
}

// A fiber released in one park and then woken runs deep again; its next long park is released
// again (the park word changed, so the scan looks at it anew).
TEST(StackRelease, EveryLongParkIsReleasedAgainAfterTheFiberRanDeep) {
  StartFibersMode();
  RepeatFiber r;
  r.rounds = 3;
  FiberTask* t = nullptr;
  ASSERT_EQ(FiberScheduler::Spawn(kFiberStack, &DeepParkRepeat, &r, false, &t), 0);
  for (int round = 1; round <= r.rounds; ++round) {
    ASSERT_TRUE(WaitUntil([&] { return r.parked_round.load() == round && t->parked(); }));
    const uintptr_t dead_top = r.call_sp - 64 * 1024;
    ASSERT_TRUE(WaitUntil([&] {
      FiberScheduler::ScanParkedStacks();
      return Resident(r.lowest, dead_top) == 0;
    })) << "round "
        << round;
    r.go_round.store(round);
    t->Unpark();
  }
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(r.bad_sums.load(), 0);
}

TEST(StackRelease, APooledStackKeepsOnlyItsTopResident) {
  FiberStack s = FiberStackPool::Get(512 * 1024);
  ASSERT_NE(s.base, nullptr);
  auto lo = reinterpret_cast<uintptr_t>(s.base) + PageSize();
  auto top = reinterpret_cast<uintptr_t>(s.top());
  memset(reinterpret_cast<void*>(lo), 1, top - lo);  // a fiber that used all of it
  ASSERT_EQ(Resident(lo, top), (top - lo) / PageSize());
  FiberStackPool::Put(s);
  EXPECT_EQ(Resident(lo, top - 16 * 1024), 0u);
  EXPECT_GT(Resident(top - 16 * 1024, top), 0u);
  FiberStack again = FiberStackPool::Get(512 * 1024);
  EXPECT_EQ(again.base, s.base);
  FiberStackPool::Put(again);
}

}  // namespace
}  // namespace gonet::core
