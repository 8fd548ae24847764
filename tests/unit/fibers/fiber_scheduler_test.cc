// Fibers mode scheduling (core/fibers/fiber_scheduler.h): the fiber Parker's permit and timers, run
// queue fairness, and the per-fiber thread state that every switch must carry.
#include "core/fibers/fiber_scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "core/fibers/fiber_stack.h"
#include "core/poll/parker.h"
#include "core/base/spinlock.h"
#include "core/stats/stats.h"
#include "core/base/sys.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::Go;
using fibertest::kMs;
using fibertest::StartFibersMode;
using fibertest::WaitUntil;

TEST(FiberScheduler, JoinReturnsTheStartRoutinesValue) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::vector<FiberTask*> tasks;
  for (intptr_t i = 0; i < 64; ++i) {
    FiberTask* t = nullptr;
    ASSERT_EQ(FiberScheduler::Spawn(
                  0, [](void* a) -> void* { return static_cast<char*>(a) + 1; },
                  reinterpret_cast<void*>(i), false, &t),
              0);
    tasks.push_back(t);
  }
  for (intptr_t i = 0; i < 64; ++i) {
    void* ret = nullptr;
    ASSERT_EQ(tasks[i]->Join(&ret), 0);
    EXPECT_EQ(reinterpret_cast<intptr_t>(ret), i + 1);
  }
}

// pthread_tryjoin_np / pthread_timedjoin_np on a fiber: EBUSY and ETIMEDOUT while it runs, and
// the fiber stays joinable afterwards.
TEST(FiberScheduler, TryAndTimedJoinLeaveARunningFiberJoinable) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<bool> release{false};
  FiberTask* t = Go([&] {
    while (!release.load())
      FiberScheduler::Current()->Park(DeadlineAfter(kMs), WaitKind::kRestartable);
  });
  EXPECT_EQ(t->Join(nullptr, -1), EBUSY);
  EXPECT_EQ(t->Join(nullptr, DeadlineAfter(2 * kMs)), ETIMEDOUT);
  release = true;
  EXPECT_EQ(t->Join(nullptr), 0);
}

TEST(FiberScheduler, CurrentParkerInsideAFiberIsThatFiber) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<Parker*> seen{nullptr};
  FiberTask* t = Go([&] { seen = CurrentParker(); });
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(seen.load(), static_cast<Parker*>(t));
  EXPECT_EQ(FiberScheduler::Current(), nullptr);  // this test's own thread is not a fiber
}

// Unparks racing with parks, from an OS thread, must never be lost: each round is a ping-pong,
// so a single lost wake-up hangs the test (caught by the hang detector).
TEST(FiberScheduler, UnparksFromAnotherThreadAreNeverLost) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  constexpr int kFibers = 16;
  constexpr int kRounds = 2000;
  std::atomic<int> request[kFibers] = {};
  std::atomic<int> ack[kFibers] = {};
  std::atomic<FiberTask*> task[kFibers] = {};
  Parker* driver = CurrentParker();
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < kFibers; ++i) {
    tasks.push_back(Go([&, i] {
      task[i] = FiberScheduler::Current();
      for (int round = 1; round <= kRounds; ++round) {
        while (request[i].load() < round)
          FiberScheduler::Current()->Park(0, WaitKind::kRestartable);
        ack[i].store(round);
        driver->Unpark();
      }
    }));
  }
  ASSERT_TRUE(WaitUntil([&] {
    for (auto& t : task) {
      if (t.load() == nullptr) return false;
    }
    return true;
  }));
  for (int round = 1; round <= kRounds; ++round) {
    for (int i = 0; i < kFibers; ++i) {
      request[i].store(round);
      task[i].load()->Unpark();
    }
    for (int i = 0; i < kFibers; ++i) {
      while (ack[i].load() < round) driver->Park(0, WaitKind::kRestartable);
    }
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
}

TEST(FiberScheduler, UnparkBeforeParkReturnsAtOnce) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> result{-1};
  FiberTask* t = Go([&] {
    FiberTask* self = FiberScheduler::Current();
    self->Unpark();
    self->Unpark();  // permits do not accumulate: one Park consumes both
    result = static_cast<int>(self->Park(0, WaitKind::kRestartable));
  });
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(result.load(), static_cast<int>(ParkResult::kUnparked));
}

TEST(FiberScheduler, TimedParkTimesOutAtItsDeadline) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> result{-1};
  std::atomic<bool> after_deadline{false};
  FiberTask* t = Go([&] {
    int64_t deadline = DeadlineAfter(2 * kMs);
    ParkResult r;
    do {
      r = FiberScheduler::Current()->Park(deadline, WaitKind::kRestartable);
    } while (r == ParkResult::kUnparked);  // spurious returns are allowed
    result = static_cast<int>(r);
    after_deadline = Nanotime() >= deadline;
  });
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(result.load(), static_cast<int>(ParkResult::kTimedOut));
  EXPECT_TRUE(after_deadline.load());
}

// A park woken before its deadline removes its timer, and a later untimed park is woken only by
// its Unpark. Many timed parks that end early must not leave timers that wake later parks.
TEST(FiberScheduler, EarlyWakeLeavesNoTimerBehind) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> phase{0};
  std::atomic<FiberTask*> self{nullptr};
  std::atomic<int> untimed_returns{0};
  FiberTask* t = Go([&] {
    self = FiberScheduler::Current();
    for (int i = 0; i < 100; ++i) {
      FiberScheduler::Current()->Unpark();
      EXPECT_EQ(FiberScheduler::Current()->Park(DeadlineAfter(1 * kMs), WaitKind::kRestartable),
                ParkResult::kUnparked);
    }
    phase = 1;
    while (phase.load() != 2) {
      FiberScheduler::Current()->Park(0, WaitKind::kRestartable);
      untimed_returns.fetch_add(1);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return phase.load() == 1; }));
  // Let every early-woken timer's deadline pass; none may wake the untimed park.
  usleep(5000);
  EXPECT_EQ(untimed_returns.load(), 0);
  phase = 2;
  self.load()->Unpark();
  ASSERT_EQ(t->Join(nullptr), 0);
}

// sched_yield in a fiber puts it at the back of its worker's queue: fibers that spin with Yield
// until all of them have started must all get to start, whatever worker they share.
TEST(FiberScheduler, YieldLetsEveryOtherFiberRun) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  constexpr int kFibers = 8;
  std::atomic<int> started{0};
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < kFibers; ++i) {
    tasks.push_back(Go([&] {
      started.fetch_add(1);
      while (started.load() < kFibers) FiberScheduler::Current()->Yield();
    }));
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(started.load(), kFibers);
}

// DESIGN.md Modes: errno is per fiber. Two fibers share each worker (round-robin placement), so
// a leak through a switch shows up as another fiber's value.
TEST(FiberScheduler, ErrnoIsSavedAndRestoredAcrossSwitches) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> mismatches{0};
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < 4 * FiberScheduler::workers(); ++i) {
    tasks.push_back(Go([&, i] {
      for (int k = 0; k < 200; ++k) {
        errno = 1000 + i;
        FiberScheduler::Current()->Yield();
        if (errno != 1000 + i) mismatches.fetch_add(1);
      }
    }));
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

// DESIGN.md Modes: a fiber may park inside a catch block while another fiber on the same worker
// throws; its rethrow must still find its own exception.
TEST(FiberScheduler, CaughtExceptionSurvivesOtherFibersThrowing) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> wrong{0};
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < 4 * FiberScheduler::workers(); ++i) {
    tasks.push_back(Go([&, i] {
      for (int k = 0; k < 50; ++k) {
        try {
          throw i;
        } catch (int) {
          FiberScheduler::Current()->Yield();
          try {
            throw;  // rethrows the exception currently handled by *this* fiber
          } catch (int again) {
            if (again != i) wrong.fetch_add(1);
          }
          if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
        }
      }
    }));
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(FiberScheduler, DetachedFiberIsRecycledAfterItEnds) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  std::atomic<int> ran{0};
  for (int i = 0; i < 32; ++i) {
    FiberTask* t = nullptr;
    ASSERT_EQ(FiberScheduler::Spawn(
                  0,
                  [](void* a) -> void* {
                    static_cast<std::atomic<int>*>(a)->fetch_add(1);
                    return nullptr;
                  },
                  &ran, true, &t),
              0);
  }
  ASSERT_TRUE(WaitUntil([&] { return ran.load() == 32; }));
}

TEST(FiberScheduler, ThreadSpecificDataIsPerFiberAndDestructedAtExit) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  static std::atomic<int> destructed{0};
  pthread_key_t key = 5;  // any valid index: the table is gonet's own
  FiberScheduler::NoteKeyDestructor(key, [](void*) { destructed.fetch_add(1); });
  std::atomic<int> wrong{0};
  std::vector<FiberTask*> tasks;
  static int values[4];
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(Go([&, i] {
      FiberTask* self = FiberScheduler::Current();
      EXPECT_EQ(self->GetSpecific(key), nullptr);
      self->SetSpecific(key, &values[i]);
      self->Yield();
      if (self->GetSpecific(key) != &values[i]) wrong.fetch_add(1);
    }));
  }
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(destructed.load(), 4);
  FiberScheduler::NoteKeyDestructor(key, nullptr);
}

// A fiber blocked in a call gonet does not park (here a pipe read) holds its worker; new fibers
// must go to the other workers instead of queuing behind it. (Issue 5: file IO, waitpid and DNS
// block a worker.)
TEST(FiberScheduler, NewFibersAvoidAWorkerBlockedInTheKernel) {
  GONET_SKIP_UNDER_SANITIZER();
  StartFibersMode();
  ASSERT_GE(FiberScheduler::workers(), 2);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  std::atomic<bool> blocking{false};
  FiberTask* blocked = Go([&] {
    blocking = true;
    char c;
    EXPECT_EQ(read(pipefd[0], &c, 1), 1);  // the real read: the worker blocks in the kernel
  });
  ASSERT_TRUE(WaitUntil([&] { return blocking.load(); }));
  // The placement rule is about time (a fiber that has run for over 20 ms): let it pass.
  int64_t stuck_after = Nanotime() + 30 * kMs;
  ASSERT_TRUE(WaitUntil([&] { return Nanotime() > stuck_after; }));
  std::atomic<int> done{0};
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(Go([&] { done.fetch_add(1); }));
  ASSERT_TRUE(WaitUntil([&] { return done.load() == 10; }));
  ASSERT_EQ(write(pipefd[1], "x", 1), 1);
  ASSERT_EQ(blocked->Join(nullptr), 0);
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  close(pipefd[0]);
  close(pipefd[1]);
}

// Go's handoff: every worker is stuck in a call gonet does not see (a raw pipe read), and the
// fiber that would release them is queued behind them. The sysmon must hand a stuck worker's
// queue to another thread, or the program deadlocks because fibers share workers.
TEST(FiberScheduler, StuckWorkersAreHandedOffSoQueuedFibersRun) {
  StartFibersMode();
  const int n = FiberScheduler::workers();
  std::vector<std::array<int, 2>> pipes(n);
  for (auto& p : pipes) ASSERT_EQ(pipe(p.data()), 0);
  std::atomic<int> blocking{0};
  std::vector<FiberTask*> readers;
  for (int i = 0; i < n; ++i) {
    readers.push_back(Go([&, i] {
      blocking.fetch_add(1);
      char c;
      // Raw syscall: not even a hooked read; the worker blocks in the kernel.
      EXPECT_EQ(sys::Call(SYS_read, pipes[i][0], &c, 1), 1);
    }));
  }
  // Until every worker holds a blocked reader (one worker may also have been handed off to run a
  // reader queued behind another: that is the mechanism under test, and fine here).
  ASSERT_TRUE(WaitUntil([&] { return blocking.load() == n; }));
  int64_t handoffs_before = Stats().fiber_handoffs.load();
  FiberTask* releaser = Go([&] {
    for (auto& p : pipes) EXPECT_EQ(sys::Call(SYS_write, p[1], "x", 1), 1);
  });
  ASSERT_EQ(releaser->Join(nullptr), 0);
  for (FiberTask* t : readers) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_GT(Stats().fiber_handoffs.load(), handoffs_before);
  for (auto& p : pipes) {
    close(p[0]);
    close(p[1]);
  }
}

// Work stealing of fresh fibers: one worker is held by a fiber that computes and never parks;
// fibers queued behind it that have never run are taken by the idle worker, and they pass a
// token around with Park/Unpark without losing a wake-up.
TEST(FiberScheduler, FreshFibersQueuedBehindABusyWorkerAreStolenWithoutLostWakeups) {
  StartFibersMode();
  ASSERT_GE(FiberScheduler::workers(), 2);
  std::atomic<bool> hog_running{false}, release_hog{false};
  FiberTask* hog = Go([&] {
    hog_running = true;
    while (!release_hog.load()) CpuRelax();
  });
  ASSERT_TRUE(WaitUntil([&] { return hog_running.load(); }));
  int64_t moved_before = Stats().fiber_steals.load() + Stats().fiber_handoffs.load();
  constexpr int kRing = 16, kLaps = 200;
  std::array<std::atomic<Parker*>, kRing> parkers{};
  std::array<std::atomic<int>, kRing> tokens{};
  std::vector<FiberTask*> ring;
  for (int i = 0; i < kRing; ++i) {
    ring.push_back(Go([&, i] {
      parkers[i] = CurrentParker();
      for (int lap = 0; lap < kLaps; ++lap) {
        if (i != 0 || lap != 0) {
          while (tokens[i].load() == 0) CurrentParker()->Park(0, WaitKind::kRestartable);
          tokens[i].fetch_sub(1);
        }
        int next = (i + 1) % kRing;
        if (i == kRing - 1 && lap == kLaps - 1) break;
        tokens[next].fetch_add(1);
        Parker* p;
        while ((p = parkers[next].load()) == nullptr) FiberScheduler::Current()->Yield();
        p->Unpark();
      }
    }));
  }
  for (FiberTask* t : ring) ASSERT_EQ(t->Join(nullptr), 0);
  release_hog = true;
  ASSERT_EQ(hog->Join(nullptr), 0);
  // Whether the idle worker stole them or the sysmon handed the hog's worker off first is a race;
  // with the hog never parking, one of the two must have happened.
  EXPECT_GT(Stats().fiber_steals.load() + Stats().fiber_handoffs.load(), moved_before);
}

}  // namespace
}  // namespace gonet::core
