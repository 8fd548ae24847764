// The fiber-aware futex table (core/fibers/futex_table.h) and the glibc compatibility it gives
// fiber_sync (issue 13): fibers park in the table on glibc's own futex word, OS threads sleep in
// the kernel on it, and a wake reaches both.
#include "core/fibers/futex_table.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "core/fibers/fiber_sync.h"
#include "core/fibers/futex_call.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::Go;
using fibertest::kMs;
using fibertest::StartFibersMode;
using fibertest::WaitUntil;
using testing_util::ReadThreadSyscall;

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// True while OS thread tid sleeps in futex(2) on word.
bool KernelSleepsOn(pid_t tid, const void* word) {
  long nr = -1;
  unsigned long arg0 = 0;
  return ReadThreadSyscall(tid, &nr, &arg0) && nr == SYS_futex &&
         arg0 == reinterpret_cast<uintptr_t>(word);
}

TEST(FutexTable, FiberWaitReturnsEagainWhenTheWordDiffers) {
  StartFibersMode();
  static std::atomic<uint32_t> word{7};
  std::atomic<int> r{-1};
  ASSERT_EQ(Go([&] { r = FutexWait(&word, 6, 0); })->Join(nullptr), 0);
  EXPECT_EQ(r.load(), EAGAIN);
  EXPECT_EQ(FutexWait(&word, 6, 0), EAGAIN);  // an OS thread: the kernel says so
}

// Wake-one wakes exactly one of three queued fibers; wake-all the rest; a bitset wake only the
// waiters whose bitset it meets.
TEST(FutexTable, WakeOneWakeAllAndBitsets) {
  StartFibersMode();
  static std::atomic<uint32_t> word{0};
  std::atomic<int> done{0};
  std::vector<FiberTask*> tasks;
  for (uint32_t bits : {1u, 1u, 2u}) {
    tasks.push_back(Go([&, bits] {
      while (word.load() == 0) FutexWait(&word, 0, 0, WaitKind::kRestartable, bits);
      done.fetch_add(1);
    }));
  }
  ASSERT_TRUE(WaitUntil([] { return FutexQueued(&word) == 3; }));
  word.store(1);
  EXPECT_EQ(FutexWake(&word, 1, KernelSleepers::kOnlyGonets, 2), 1);
  ASSERT_TRUE(WaitUntil([&] { return done.load() == 1; }));
  EXPECT_EQ(FutexQueued(&word), 2);
  EXPECT_EQ(FutexWake(&word, 1, KernelSleepers::kOnlyGonets, 2), 0);  // nobody left on bit 2
  EXPECT_EQ(FutexWake(&word, 1, KernelSleepers::kOnlyGonets), 1);
  EXPECT_EQ(FutexQueued(&word), 1);
  EXPECT_EQ(FutexWake(&word, INT32_MAX, KernelSleepers::kOnlyGonets), 1);
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(done.load(), 3);
}

// An OS thread waits in the kernel on the word itself, so a raw FUTEX_WAKE (glibc's waker) and
// FutexWake (gonet's) both reach it; its deadline is honoured.
TEST(FutexTable, OsThreadSleepsInTheKernelWhereAnyWakerFindsIt) {
  StartFibersMode();
  static std::atomic<uint32_t> word{0};
  for (bool raw : {true, false}) {
    word.store(0);
    std::atomic<pid_t> tid{0};
    std::atomic<int> r{-1};
    std::thread waiter([&] {
      tid = Tid();
      r = FutexWait(&word, 0, 0);
    });
    ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && KernelSleepsOn(tid, &word); }));
    word.store(1);
    if (raw) {
      syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    } else {
      EXPECT_EQ(FutexWake(&word, 1), 1);
    }
    waiter.join();
    EXPECT_EQ(r.load(), 0);
  }
  word.store(0);
  EXPECT_EQ(FutexWait(&word, 0, DeadlineAfter(2 * kMs)), ETIMEDOUT);
}

// A fiber queued on a word and an OS thread in the kernel on the same word: a wake of two reaches
// both, the fiber from the table and the thread from the kernel.
TEST(FutexTable, WakeReachesQueuedFibersAndKernelSleepersAlike) {
  StartFibersMode();
  static std::atomic<uint32_t> word{0};
  std::atomic<pid_t> tid{0};
  FiberTask* fiber = Go([] {
    while (word.load() == 0) FutexWait(&word, 0, 0);
  });
  std::thread os([&] {
    tid = Tid();
    while (word.load() == 0) FutexWait(&word, 0, 0);
  });
  ASSERT_TRUE(WaitUntil(
      [&] { return FutexQueued(&word) == 1 && tid.load() != 0 && KernelSleepsOn(tid, &word); }));
  word.store(1);
  EXPECT_EQ(FutexWake(&word, 2), 2);
  os.join();
  ASSERT_EQ(fiber->Join(nullptr), 0);
}

// Wakes of one serve the waiters in the order they came, an OS thread in the kernel as much as
// the fibers queued before and after it (futex_table.h, rule 4): the second wake is the thread's,
// not the later fiber's. Natively the kernel's futex queue is in arrival order too; a wake that
// preferred fibers starved the main thread of python3 -m http.server (its GIL wait) in fibers mode.
TEST(FutexTable, WakeOneServesFibersAndOsThreadsInArrivalOrder) {
  StartFibersMode();
  static std::atomic<uint32_t> word{0};
  std::atomic<int> order{0}, first{0}, thread{0}, last{0};
  FiberTask* f1 = Go([&] {
    EXPECT_EQ(FutexWait(&word, 0, 0), 0);
    first = ++order;
  });
  ASSERT_TRUE(WaitUntil([] { return FutexQueued(&word) == 1; }));
  std::atomic<pid_t> tid{0};
  std::thread os([&] {
    tid = Tid();
    EXPECT_EQ(FutexWait(&word, 0, 0), 0);
    thread = ++order;
  });
  ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && KernelSleepsOn(tid, &word); }));
  FiberTask* f2 = Go([&] {
    EXPECT_EQ(FutexWait(&word, 0, 0), 0);
    last = ++order;
  });
  ASSERT_TRUE(WaitUntil([] { return FutexQueued(&word) == 2; }));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(FutexWake(&word, 1, KernelSleepers::kOnlyGonets), 1) << "wake " << i;
    ASSERT_TRUE(WaitUntil([&] { return order.load() >= i; })) << "wake " << i;
    usleep(20 * 1000);  // room for a wrongly woken second waiter to show
    EXPECT_EQ(order.load(), i) << "wake " << i << " woke more than one";
  }
  os.join();
  ASSERT_EQ(f1->Join(nullptr), 0);
  ASSERT_EQ(f2->Join(nullptr), 0);
  EXPECT_EQ(first.load(), 1);
  EXPECT_EQ(thread.load(), 2);
  EXPECT_EQ(last.load(), 3);
}

// glibc's own sem_wait (an OS thread sleeping inside glibc) is woken by gonet's SemPost, and a
// fiber waiting in SemWait registers in glibc's waiter count, so glibc's sem_post would wake too.
TEST(FiberSync, SemaphoreKeepsGlibcsLayoutBothWays) {
  StartFibersMode();
  static sem_t sem;
  ASSERT_EQ(sem_init(&sem, 0, 0), 0);
  std::atomic<pid_t> tid{0};
  std::atomic<int> r{-1};
  std::thread glibc_waiter([&] {
    tid = Tid();
    r = sem_wait(&sem);  // glibc's: the unit tests have no shim
  });
  ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && KernelSleepsOn(tid, &sem); }));
  ASSERT_EQ(SemPost(&sem), 0);
  glibc_waiter.join();
  EXPECT_EQ(r.load(), 0);

  FiberTask* fiber = Go([&] { r = SemWait(&sem, 0); });
  ASSERT_TRUE(WaitUntil([] { return FutexQueued(&sem) == 1; }));
  uint64_t data;
  memcpy(&data, &sem, sizeof data);
  EXPECT_EQ(data >> 32, 1u);  // glibc's nwaiters: one waiter registered
  int value = -1;
  ASSERT_EQ(sem_getvalue(&sem, &value), 0);
  EXPECT_EQ(value, 0);
  ASSERT_EQ(SemPost(&sem), 0);
  ASSERT_EQ(fiber->Join(nullptr), 0);
  EXPECT_EQ(r.load(), 0);
  memcpy(&data, &sem, sizeof data);
  EXPECT_EQ(data, 0u);  // no token and no waiter left, as glibc would leave it
  sem_destroy(&sem);
}

// 200 waiters, fibers in SemWait and OS threads in glibc's sem_timedwait, and 200 posts: each
// wait is satisfied by a post, none by its deadline.
TEST(FiberSync, ManyMixedSemaphoreWaitersAllWoken) {
#if defined(__SANITIZE_THREAD__)
  // Mixed waiters on one object: ThreadSanitizer intercepts glibc's entries (the non-fiber
  // waiter's sem_timedwait, pthread_mutex_lock, pthread_once) and models the object as its own,
  // but cannot see gonet's operations on the same futex words that release them, so it reports
  // races and a locked-mutex destroy that are not there (or waits for a wake it cannot see).
  GTEST_SKIP() << "ThreadSanitizer cannot model gonet and glibc sharing one futex word";
#endif

  StartFibersMode();
  static sem_t sem;
  ASSERT_EQ(sem_init(&sem, 0, 0), 0);
  constexpr int kFibers = 192, kThreads = 8;
  std::atomic<int> ok{0};
  std::vector<FiberTask*> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.push_back(Go([&] { ok += SemWait(&sem, DeadlineAfter(fibertest::kHangNs)) == 0; }));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_sec += 60;
      ok += sem_timedwait(&sem, &t) == 0;
    });
  }
  ASSERT_TRUE(WaitUntil([] {
    uint64_t data;
    memcpy(&data, &sem, sizeof data);
    return (data >> 32) == kFibers + kThreads;
  }));
  for (int i = 0; i < kFibers + kThreads; ++i) ASSERT_EQ(SemPost(&sem), 0);
  for (std::thread& t : threads) t.join();
  for (FiberTask* t : fibers) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(ok.load(), kFibers + kThreads);
  EXPECT_EQ(SemTryWait(&sem), EAGAIN);
  sem_destroy(&sem);
}

// An OS thread sleeping in glibc's own pthread_mutex_lock is woken by gonet's unlock, and the
// user count glibc keeps stays balanced across the two (pthread_mutex_destroy: 0, not EBUSY).
TEST(FiberSync, MutexWaiterInGlibcIsWokenByGonetsUnlock) {
#if defined(__SANITIZE_THREAD__)
  // Mixed waiters on one object: ThreadSanitizer intercepts glibc's entries (the non-fiber
  // waiter's sem_timedwait, pthread_mutex_lock, pthread_once) and models the object as its own,
  // but cannot see gonet's operations on the same futex words that release them, so it reports
  // races and a locked-mutex destroy that are not there (or waits for a wake it cannot see).
  GTEST_SKIP() << "ThreadSanitizer cannot model gonet and glibc sharing one futex word";
#endif

  StartFibersMode();
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  ASSERT_EQ(MutexLock(&mu, 0), 0);
  std::atomic<pid_t> tid{0};
  std::thread glibc_locker([&] {
    tid = Tid();
    ASSERT_EQ(pthread_mutex_lock(&mu), 0);  // glibc's
    ASSERT_EQ(pthread_mutex_unlock(&mu), 0);
  });
  ASSERT_TRUE(WaitUntil([&] { return tid.load() != 0 && KernelSleepsOn(tid, &mu); }));
  ASSERT_EQ(MutexUnlock(&mu), 0);
  glibc_locker.join();
  ASSERT_EQ(pthread_mutex_lock(&mu), 0);
  ASSERT_EQ(MutexUnlock(&mu), 0);
  EXPECT_EQ(pthread_mutex_destroy(&mu), 0);
}

// syscall(SYS_futex) decoding: a fiber's private wait parks in the table (it does not hold its
// worker in the kernel) and a private wake finds it; what core does not handle goes to the kernel.
TEST(FutexCall, FiberPrivateWaitParksAndPrivateWakeFindsIt) {
  StartFibersMode();
  static std::atomic<uint32_t> word{0};
  auto args = [](int op, long val, long bitset = FUTEX_BITSET_MATCH_ANY) {
    return std::vector<long>{reinterpret_cast<long>(&word), op, val, 0, 0, bitset};
  };
  std::atomic<long> waited{-1};
  FiberTask* t = Go([&] {
    long r = -1;
    EXPECT_TRUE(FutexCall(args(FUTEX_WAIT_BITSET_PRIVATE, 0, 8).data(), &r));
    waited = r;
  });
  ASSERT_TRUE(WaitUntil([] { return FutexQueued(&word) == 1; }));
  long r = -1;
  EXPECT_TRUE(FutexCall(args(FUTEX_WAKE_BITSET_PRIVATE, 1, 2).data(), &r));
  EXPECT_EQ(r, 0);  // another bit: not this waiter
  EXPECT_TRUE(FutexCall(args(FUTEX_WAKE_PRIVATE, INT32_MAX).data(), &r));
  EXPECT_EQ(r, 1);
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(waited.load(), 0);

  std::atomic<long> differs = 1;
  ASSERT_EQ(Go([&] {
              long x = 0;
              FutexCall(args(FUTEX_WAIT_PRIVATE, 5).data(), &x);
              differs = x;
            })->Join(nullptr),
            0);
  EXPECT_EQ(differs.load(), -EAGAIN);
  EXPECT_FALSE(FutexCall(args(FUTEX_WAIT, 0).data(), &r));          // shared: the kernel's
  EXPECT_FALSE(FutexCall(args(FUTEX_WAIT_PRIVATE, 0).data(), &r));  // an OS thread: the kernel's
  EXPECT_FALSE(FutexCall(args(FUTEX_CMP_REQUEUE_PRIVATE, 0).data(), &r));
  EXPECT_FALSE(FutexCall(args(FUTEX_WAIT_BITSET_PRIVATE, 0, 0).data(), &r));  // EINVAL
}

}  // namespace
}  // namespace gonet::core
