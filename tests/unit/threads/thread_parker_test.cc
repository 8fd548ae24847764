// ThreadParker: the futex-backed binary permit of threads mode (core/poll/parker.h,
// core/threads/thread_parker.h).
#include "core/threads/thread_parker.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "core/base/base.h"
#include "tests/unit/wait_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // wait_util.h: WaitUntil, InFutex, kMs

TEST(ThreadParker, EachThreadHasItsOwnParker) {
  Parker* mine = CurrentParker();
  EXPECT_EQ(CurrentParker(), mine);
  Parker* theirs = nullptr;
  std::thread([&] { theirs = CurrentParker(); }).join();
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
}

TEST(ThreadParker, UnparkBeforeParkReturnsAtOnce) {
  Parker* p = CurrentParker();
  p->Unpark();
  EXPECT_EQ(p->Park(0, WaitKind::kRestartable), ParkResult::kUnparked);
}

TEST(ThreadParker, PermitsDoNotAccumulate) {
  Parker* p = CurrentParker();
  p->Unpark();
  p->Unpark();
  p->Unpark();
  EXPECT_EQ(p->Park(0, WaitKind::kRestartable), ParkResult::kUnparked);
  const int64_t deadline = Nanotime() + 10 * kMs;
  EXPECT_EQ(p->Park(deadline, WaitKind::kRestartable), ParkResult::kTimedOut);
  EXPECT_GE(Nanotime(), deadline);
}

TEST(ThreadParker, ParkTimesOutAtItsDeadline) {
  Parker* p = CurrentParker();
  const int64_t deadline = Nanotime() + 30 * kMs;
  EXPECT_EQ(p->Park(deadline, WaitKind::kAlwaysEintr), ParkResult::kTimedOut);
  EXPECT_GE(Nanotime(), deadline);
}

TEST(ThreadParker, PastDeadlineTimesOutWithoutSleeping) {
  Parker* p = CurrentParker();
  EXPECT_EQ(p->Park(1, WaitKind::kRestartable), ParkResult::kTimedOut);
  // A permit still wins over an expired deadline: it is consumed, not lost.
  p->Unpark();
  EXPECT_EQ(p->Park(1, WaitKind::kRestartable), ParkResult::kUnparked);
}

TEST(ThreadParker, HugeDeadlineSleepsUntilUnparked) {
  std::atomic<Parker*> parker{nullptr};
  std::atomic<pid_t> tid{0};
  ParkResult r = ParkResult::kTimedOut;
  std::thread sleeper([&] {
    parker.store(CurrentParker());
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    r = parker.load()->Park(INT64_MAX, WaitKind::kRestartable);
  });
  ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && InFutex(tid.load()); }));
  parker.load()->Unpark();
  sleeper.join();
  EXPECT_EQ(r, ParkResult::kUnparked);
}

TEST(ThreadParker, UnparkFromAnotherThreadWakesTheSleeper) {
  std::atomic<Parker*> parker{nullptr};
  std::atomic<pid_t> tid{0};
  ParkResult r = ParkResult::kTimedOut;
  std::thread sleeper([&] {
    parker.store(CurrentParker());
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    r = parker.load()->Park(0, WaitKind::kRestartable);
  });
  ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && InFutex(tid.load()); }));
  parker.load()->Unpark();
  sleeper.join();
  EXPECT_EQ(r, ParkResult::kUnparked);
}

// Unpark racing Park: the permit is never lost, whichever side runs first.
TEST(ThreadParker, UnparkRacingParkIsNotLost) {
  constexpr int kIterations = 3000;
  std::atomic<Parker*> parker{nullptr};
  std::atomic<int> go{-1};
  std::atomic<int> woke{-1};
  std::atomic<bool> stop{false};
  std::thread sleeper([&] {
    parker.store(CurrentParker());
    for (int i = 0; i < kIterations && !stop.load(); ++i) {
      while (go.load() != i) {
        if (stop.load()) return;
      }
      // Spurious returns are allowed (parker.h): loop until this round's permit is seen.
      parker.load()->Park(0, WaitKind::kRestartable);
      woke.store(i);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return parker.load() != nullptr; }));
  for (int i = 0; i < kIterations; ++i) {
    go.store(i);
    parker.load()->Unpark();
    if (!WaitUntil([&] { return woke.load() == i; })) {
      ADD_FAILURE() << "lost permit in iteration " << i;
      stop.store(true);
      parker.load()->Unpark();
      break;
    }
  }
  sleeper.join();
}

// Parkers are recycled when threads exit, so a late Unpark lands on valid memory (parker.h).
TEST(ThreadParker, ExitedThreadsParkerIsReusedNotFreed) {
  Parker* first = nullptr;
  std::thread([&] { first = CurrentParker(); }).join();
  first->Unpark();  // late permit after its owner exited: must be harmless
  Parker* second = nullptr;
  ParkResult r = ParkResult::kTimedOut;
  std::thread([&] {
    second = CurrentParker();
    // The recycled parker may carry the late permit: a spurious wake-up, which callers allow.
    r = second->Park(1, WaitKind::kRestartable);
  }).join();
  EXPECT_EQ(second, first);
  EXPECT_TRUE(r == ParkResult::kUnparked || r == ParkResult::kTimedOut);
}

}  // namespace
}  // namespace gonet::core
