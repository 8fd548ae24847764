// DirLock: several threads waiting in one direction of one fd queue FIFO, leave on close,
// deadline or signal, and never lose a grant (core/poll/dir_lock.h).
//
// A queued waiter is not counted in Stats().threads_parked (only the pollDesc's waiter is), so
// these tests observe "queued and asleep" as the thread being inside the futex syscall
// (/proc/self/task/TID/syscall), which a waiter only enters after linking itself into the queue.
#include "core/poll/dir_lock.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "core/base/base.h"
#include "core/poll/parker.h"
#include "tests/unit/wait_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // wait_util.h: WaitUntil, InFutex, kMs

// One thread that takes the lock, records its turn, and gives the lock back.
class Locker {
 public:
  Locker(DirLock* lock, const std::atomic<bool>* closing, int64_t deadline_ns,
         std::vector<int>* order, int id)
      : thread_([=, this] {
          CurrentParker();  // take a parker before publishing the tid: no allocation later
          tid_.store(static_cast<pid_t>(syscall(SYS_gettid)));
          result_ = lock->Lock(*closing, deadline_ns, WaitKind::kRestartable);
          end_ns_ = Nanotime();
          if (result_ == WaitResult::kOk) {
            order->push_back(id);  // guarded by the DirLock itself
            lock->Unlock();
          }
          done_.store(true);
        }) {}
  ~Locker() {
    if (thread_.joinable()) thread_.join();
  }
  bool Asleep() const {
    pid_t t = tid_.load();
    return t != 0 && !done_.load() && InFutex(t);
  }
  bool done() const { return done_.load(); }
  WaitResult Join() {
    thread_.join();
    return result_;
  }
  int64_t end_ns() const { return end_ns_; }

 private:
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  WaitResult result_ = WaitResult::kOk;
  int64_t end_ns_ = 0;
  std::thread thread_;
};

TEST(DirLock, UncontendedLockAndUnlockTakeTheFastPath) {
  DirLock lock;
  std::atomic<bool> closing{false};
  EXPECT_FALSE(lock.held());
  EXPECT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_TRUE(lock.held());
  lock.Unlock();
  EXPECT_FALSE(lock.held());
}

TEST(DirLock, WaitersAreGrantedInFifoOrder) {
  DirLock lock;
  std::atomic<bool> closing{false};
  std::vector<int> order;
  ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  constexpr int kWaiters = 5;
  std::vector<std::unique_ptr<Locker>> lockers;
  for (int i = 0; i < kWaiters; ++i) {
    lockers.push_back(std::make_unique<Locker>(&lock, &closing, 0, &order, i));
    // The next one must queue behind this one: wait until this one sleeps in the queue.
    ASSERT_TRUE(WaitUntil([&] { return lockers.back()->Asleep(); }));
  }
  order.push_back(-1);
  lock.Unlock();
  for (auto& l : lockers) EXPECT_EQ(l->Join(), WaitResult::kOk);
  EXPECT_EQ(order, (std::vector<int>{-1, 0, 1, 2, 3, 4}));
  EXPECT_FALSE(lock.held());
}

TEST(DirLock, NewcomerCannotOvertakeAQueuedWaiter) {
  // Unlock hands the lock straight to the queue head; the lock is never free in between.
  DirLock lock;
  std::atomic<bool> closing{false};
  std::vector<int> order;
  ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  Locker queued(&lock, &closing, 0, &order, 1);
  ASSERT_TRUE(WaitUntil([&] { return queued.Asleep(); }));
  lock.Unlock();
  // The grant went to `queued`; whether it has run yet or not, a newcomer gets in after it.
  ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  order.push_back(2);
  lock.Unlock();
  EXPECT_EQ(queued.Join(), WaitResult::kOk);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(DirLock, ClosingWakesOnlyTheWaitersThatSeeIt) {
  DirLock lock;
  std::atomic<bool> open{false};
  std::atomic<bool> closing{false};
  std::vector<int> order;
  ASSERT_EQ(lock.Lock(open, 0, WaitKind::kRestartable), WaitResult::kOk);
  Locker first(&lock, &open, 0, &order, 1);
  ASSERT_TRUE(WaitUntil([&] { return first.Asleep(); }));
  Locker evicted(&lock, &closing, 0, &order, 2);
  ASSERT_TRUE(WaitUntil([&] { return evicted.Asleep(); }));
  Locker last(&lock, &open, 0, &order, 3);
  ASSERT_TRUE(WaitUntil([&] { return last.Asleep(); }));
  closing.store(true);
  lock.WakeAll();
  EXPECT_EQ(evicted.Join(), WaitResult::kClosing);
  // The others re-checked their own flag, went back to sleep, and keep their places.
  ASSERT_TRUE(WaitUntil([&] { return first.Asleep() && last.Asleep(); }));
  lock.Unlock();
  EXPECT_EQ(first.Join(), WaitResult::kOk);
  EXPECT_EQ(last.Join(), WaitResult::kOk);
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_FALSE(lock.held());
}

TEST(DirLock, ClosingBeforeQueueingFailsWithoutTakingTheLock) {
  DirLock lock;
  std::atomic<bool> open{false};
  std::atomic<bool> closing{true};
  ASSERT_EQ(lock.Lock(open, 0, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kClosing);
  lock.Unlock();
  EXPECT_FALSE(lock.held());
}

TEST(DirLock, QueuedWaiterTimesOutAtItsDeadlineAndLeavesTheLockUsable) {
  DirLock lock;
  std::atomic<bool> closing{false};
  std::vector<int> order;
  ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  const int64_t deadline = Nanotime() + 30 * kMs;
  Locker late(&lock, &closing, deadline, &order, 1);
  EXPECT_EQ(late.Join(), WaitResult::kTimeout);
  EXPECT_GE(late.end_ns(), deadline);
  EXPECT_TRUE(lock.held());
  lock.Unlock();
  // With the queue empty again, the fast path must work (no state stuck at "queued").
  EXPECT_FALSE(lock.held());
  EXPECT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  lock.Unlock();
  EXPECT_TRUE(order.empty());
}

TEST(DirLock, PastDeadlineFailsAtOnce) {
  DirLock lock;
  std::atomic<bool> closing{false};
  ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_EQ(lock.Lock(closing, 1, WaitKind::kRestartable), WaitResult::kTimeout);
  lock.Unlock();
  EXPECT_FALSE(lock.held());
}

// The holder's Unlock grants the lock to a waiter just as the waiter's deadline expires: the
// waiter either returns kOk (it owns the lock) or hands the grant on. Either way, once everyone
// has left, the lock is free: a lost grant would leave it held forever.
TEST(DirLock, GrantRacingDeadlineIsNeverLost) {
  constexpr int kIterations = 400;
  for (int i = 0; i < kIterations; ++i) {
    DirLock lock;
    std::atomic<bool> closing{false};
    std::vector<int> order;
    ASSERT_EQ(lock.Lock(closing, 0, WaitKind::kRestartable), WaitResult::kOk);
    const int64_t deadline = Nanotime() + (i % 20) * 10000;  // 0..190us
    Locker waiter(&lock, &closing, deadline, &order, 1);
    while (Nanotime() < deadline) {
    }
    lock.Unlock();
    WaitResult r = waiter.Join();
    ASSERT_TRUE(r == WaitResult::kOk || r == WaitResult::kTimeout) << "iteration " << i;
    ASSERT_FALSE(lock.held()) << "grant lost in iteration " << i;
    ASSERT_EQ(order.size(), r == WaitResult::kOk ? 1u : 0u);
  }
}

// Many threads hammer one lock; mutual exclusion holds (a plain counter guarded only by the
// DirLock, which TSan checks) and nobody is stranded.
TEST(DirLock, ManyThreadsKeepMutualExclusion) {
  DirLock lock;
  std::atomic<bool> closing{false};
  constexpr int kThreads = 6;
  constexpr int kRounds = 2000;
  int64_t counter = 0;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        if (lock.Lock(closing, 0, WaitKind::kRestartable) != WaitResult::kOk) {
          overlaps.fetch_add(1000000);
          return;
        }
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++counter;
        inside.fetch_sub(1);
        lock.Unlock();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, int64_t{kThreads} * kRounds);
  EXPECT_FALSE(lock.held());
}

}  // namespace
}  // namespace gonet::core
