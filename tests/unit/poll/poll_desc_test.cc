// PollDesc: the rg/wg binary semaphores, deadlines, eviction and reuse (core/poll/poll_desc.h).
//
// These drive a pollDesc directly (no socket, no netpoller): Ready stands in for an epoll event.
// Every wait for another thread is a wait for observable state (Stats().threads_parked, a flag);
// the only timing assertions are lower bounds on timeouts.
#include "core/poll/poll_desc.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "core/base/base.h"
#include "core/stats/stats.h"
#include "tests/unit/wait_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // wait_util.h: WaitUntil, kMs

// Blocked on either path: parked on a pollDesc, or in a blocking call made in the kernel.
int64_t Parked() { return Stats().threads_parked.load() + Stats().threads_in_kernel.load(); }
int64_t Parks() { return Stats().parks.load(); }

// A pollDesc from the arena, freed at scope exit so the arena's free list stays consistent.
class ScopedPollDesc {
 public:
  ScopedPollDesc() : pd_(PollDesc::Alloc(1000)) {}
  ~ScopedPollDesc() {
    if (pd_ != nullptr) pd_->Free();
  }
  PollDesc* operator->() const { return pd_; }
  PollDesc* get() const { return pd_; }

 private:
  PollDesc* pd_;
};

// A waiter on its own thread, so the test thread can observe and poke it.
class Waiter {
 public:
  Waiter(PollDesc* pd, Mode mode, WaitKind kind = WaitKind::kRestartable)
      : thread_([this, pd, mode, kind] {
          start_ns_ = Nanotime();
          result_ = pd->Wait(mode, kind);
          end_ns_ = Nanotime();
          done_.store(true);
        }) {}
  ~Waiter() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(); }
  WaitResult Join() {
    thread_.join();
    return result_;
  }
  int64_t end_ns() const { return end_ns_; }

 private:
  std::atomic<bool> done_{false};
  WaitResult result_ = WaitResult::kOk;
  int64_t start_ns_ = 0;
  int64_t end_ns_ = 0;
  std::thread thread_;
};

TEST(PollDesc, ReadinessBeforeParkIsConsumedWithoutParking) {
  ScopedPollDesc pd;
  const int64_t parks = Parks();
  pd->Ready(Mode::kRead);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_EQ(Parks(), parks);
  // Consumed: the next wait has nothing to take and runs into its deadline.
  pd->SetDeadline(Mode::kRead, Nanotime() + 5 * kMs);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kTimeout);
}

TEST(PollDesc, RepeatedReadinessIsRememberedOnce) {
  ScopedPollDesc pd;
  pd->Ready(Mode::kRead);
  pd->Ready(Mode::kRead);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  pd->SetDeadline(Mode::kRead, Nanotime() + 5 * kMs);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kTimeout);
}

TEST(PollDesc, ReadinessOfOneDirectionDoesNotWakeTheOther) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  Waiter writer(pd.get(), Mode::kWrite);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  pd->Ready(Mode::kRead);
  // The read readiness is remembered for a reader, and the writer stays parked.
  const int64_t parks = Parks();
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_EQ(Parks(), parks);
  EXPECT_FALSE(writer.done());
  EXPECT_EQ(Parked(), base + 1);
  pd->Ready(Mode::kWrite);
  EXPECT_EQ(writer.Join(), WaitResult::kOk);
}

TEST(PollDesc, ReadinessWakesParkedWaiter) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  const int64_t wakes = Stats().wakes_io.load();
  Waiter reader(pd.get(), Mode::kRead);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  pd->Ready(Mode::kRead);
  EXPECT_EQ(reader.Join(), WaitResult::kOk);
  EXPECT_EQ(Stats().wakes_io.load(), wakes + 1);
  EXPECT_EQ(Parked(), base);
}

// Go's netpollblock/netpollready race: the notifier may run before the waiter's kPdWait CAS,
// between it and the commit, or after the commit. Every interleaving must end with the waiter
// returning kOk exactly once per Ready, and seeing what the notifier wrote before Ready (the
// semaphore's CASes carry the happens-before edge; TSan checks it on `payload`).
TEST(PollDesc, ReadinessRacingParkIsNotLost) {
  ScopedPollDesc pd;
  constexpr int kIterations = 3000;
  std::atomic<int> go{-1};
  std::atomic<int> waited{-1};
  std::atomic<int> notified{-1};
  std::atomic<bool> stop{false};
  int payload = -1;  // plain on purpose: published by Ready, consumed after Wait
  int mismatches = 0;
  std::thread waiter([&] {
    for (int i = 0; i < kIterations; ++i) {
      while (go.load() != i) {
        if (stop.load()) return;
      }
      WaitResult r = pd->Wait(Mode::kRead, WaitKind::kRestartable);
      if (r != WaitResult::kOk || payload != i) ++mismatches;
      waited.store(i);
    }
  });
  std::thread notifier([&] {
    for (int i = 0; i < kIterations; ++i) {
      while (go.load() != i) {
        if (stop.load()) return;
      }
      payload = i;
      pd->Ready(Mode::kRead);
      notified.store(i);
    }
  });
  for (int i = 0; i < kIterations; ++i) {
    go.store(i);
    bool finished = WaitUntil([&] { return waited.load() == i && notified.load() == i; });
    if (!finished) {
      ADD_FAILURE() << "lost wake-up in iteration " << i << " (waiter at " << waited.load()
                    << ", notifier at " << notified.load() << ")";
      stop.store(true);
      pd->Evict();  // unstick the waiter so the test can end
      break;
    }
  }
  waiter.join();
  notifier.join();
  EXPECT_EQ(mismatches, 0);
}

TEST(PollDesc, WaitTimesOutAfterTheDeadline) {
  ScopedPollDesc pd;
  const int64_t timeouts = Stats().wakes_timeout.load();
  const int64_t start = Nanotime();
  const int64_t deadline = start + 50 * kMs;
  pd->SetDeadline(Mode::kRead, deadline);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kTimeout);
  EXPECT_GE(Nanotime(), deadline);
  EXPECT_EQ(Stats().wakes_timeout.load(), timeouts + 1);
}

TEST(PollDesc, DeadlineInThePastFailsAtOnceWithoutParking) {
  ScopedPollDesc pd;
  const int64_t parks = Parks();
  pd->SetDeadline(Mode::kWrite, 1);  // 1ns after boot
  EXPECT_EQ(pd->Wait(Mode::kWrite, WaitKind::kRestartable), WaitResult::kTimeout);
  EXPECT_EQ(pd->CheckErr(Mode::kWrite), WaitResult::kTimeout);
  EXPECT_EQ(pd->CheckErr(Mode::kRead), WaitResult::kOk);
  EXPECT_EQ(Parks(), parks);
}

TEST(PollDesc, PastDeadlineWinsOverPendingReadiness) {
  // Go's netpollcheckerr runs before the semaphore: an expired deadline fails the wait even if
  // readiness is pending (the readiness stays for the next, undeadlined wait).
  ScopedPollDesc pd;
  pd->Ready(Mode::kRead);
  pd->SetDeadline(Mode::kRead, 1);
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kTimeout);
  pd->SetDeadline(Mode::kRead, 0);
  const int64_t parks = Parks();
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_EQ(Parks(), parks);
}

// A waiter parks with the old deadline as its futex timeout; the old "timer" firing after the
// deadline was extended must do nothing (Go: rseq/wseq protect from stale timers).
TEST(PollDesc, ExtendingDeadlineWhileParkedDoesNotTimeOutAtTheOldDeadline) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  const int64_t timeouts = Stats().wakes_timeout.load();
  const int64_t old_deadline = Nanotime() + 100 * kMs;
  pd->SetDeadline(Mode::kRead, old_deadline);
  Waiter reader(pd.get(), Mode::kRead);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  pd->SetDeadline(Mode::kRead, Nanotime() + 3600 * 1000 * kMs);
  // Let the old deadline pass, plus a margin for a slow machine to act on it if it were going to.
  ASSERT_TRUE(WaitUntil([&] { return Nanotime() > old_deadline + 300 * kMs; }));
  EXPECT_FALSE(reader.done()) << "woke at the old deadline";
  EXPECT_EQ(Parked(), base + 1);
  EXPECT_EQ(Stats().wakes_timeout.load(), timeouts);
  pd->Ready(Mode::kRead);
  EXPECT_EQ(reader.Join(), WaitResult::kOk);
}

TEST(PollDesc, ClearingDeadlineWhileParkedWaitsForReadiness) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  const int64_t old_deadline = Nanotime() + 100 * kMs;
  pd->SetDeadline(Mode::kWrite, old_deadline);
  Waiter writer(pd.get(), Mode::kWrite);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  pd->SetDeadline(Mode::kWrite, 0);
  ASSERT_TRUE(WaitUntil([&] { return Nanotime() > old_deadline + 300 * kMs; }));
  EXPECT_FALSE(writer.done()) << "woke at the cleared deadline";
  pd->Ready(Mode::kWrite);
  EXPECT_EQ(writer.Join(), WaitResult::kOk);
}

TEST(PollDesc, ShorteningDeadlineWhileParkedWakesAtTheNewDeadline) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  pd->SetDeadline(Mode::kRead, Nanotime() + 3600 * 1000 * kMs);
  Waiter reader(pd.get(), Mode::kRead);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  const int64_t new_deadline = Nanotime() + 20 * kMs;
  pd->SetDeadline(Mode::kRead, new_deadline);
  EXPECT_EQ(reader.Join(), WaitResult::kTimeout);
  EXPECT_GE(reader.end_ns(), new_deadline);
  EXPECT_EQ(Parked(), base);
}

TEST(PollDesc, PastDeadlineSetWhileParkedWakesAtOnce) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  Waiter reader(pd.get(), Mode::kRead);  // no deadline: would wait forever
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  pd->SetDeadline(Mode::kRead, 1);
  EXPECT_EQ(reader.Join(), WaitResult::kTimeout);
}

TEST(PollDesc, NegativeDeadlineMeansNoDeadline) {
  ScopedPollDesc pd;
  pd->SetDeadline(Mode::kRead, -1);
  EXPECT_EQ(pd->deadline(Mode::kRead), 0);
  EXPECT_EQ(pd->CheckErr(Mode::kRead), WaitResult::kOk);
  pd->SetDeadline(Mode::kWrite, INT64_MIN);
  EXPECT_EQ(pd->deadline(Mode::kWrite), 0);
}

TEST(PollDesc, HugeDeadlineParksUntilReadiness) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  pd->SetDeadline(Mode::kRead, INT64_MAX);
  pd->SetDeadline(Mode::kWrite, INT64_MAX);
  EXPECT_EQ(pd->CheckErr(Mode::kRead), WaitResult::kOk);
  Waiter reader(pd.get(), Mode::kRead, WaitKind::kRestartable);
  Waiter writer(pd.get(), Mode::kWrite, WaitKind::kAlwaysEintr);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 2; }));
  pd->Ready(Mode::kRead);
  pd->Ready(Mode::kWrite);
  EXPECT_EQ(reader.Join(), WaitResult::kOk);
  EXPECT_EQ(writer.Join(), WaitResult::kOk);
}

TEST(PollDesc, DeadlineAfterSaturatesInsteadOfOverflowing) {
  EXPECT_EQ(DeadlineAfter(INT64_MAX), INT64_MAX);
  EXPECT_EQ(DeadlineAfter(INT64_MAX - 1), INT64_MAX);
  EXPECT_EQ(DeadlineAfter(0), 0);
  EXPECT_EQ(DeadlineAfter(-1), 0);
  EXPECT_EQ(DeadlineAfter(INT64_MIN), 0);
  const int64_t before = Nanotime();
  const int64_t d = DeadlineAfter(kMs);
  EXPECT_GE(d, before + kMs);
}

// Go's pollDesc.evict: close wakes both directions, and they report closing (EBADF).
TEST(PollDesc, EvictWakesParkedReaderAndWriterWithClosing) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  const int64_t closes = Stats().wakes_close.load();
  Waiter reader(pd.get(), Mode::kRead);
  Waiter writer(pd.get(), Mode::kWrite, WaitKind::kAlwaysEintr);
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 2; }));
  pd->Evict();
  EXPECT_EQ(reader.Join(), WaitResult::kClosing);
  EXPECT_EQ(writer.Join(), WaitResult::kClosing);
  EXPECT_EQ(Stats().wakes_close.load(), closes + 2);
  EXPECT_EQ(Parked(), base);
}

TEST(PollDesc, WaitAfterEvictFailsAtOnceWithoutParking) {
  ScopedPollDesc pd;
  pd->Evict();
  pd->Ready(Mode::kRead);            // closing wins over readiness
  pd->SetDeadline(Mode::kWrite, 1);  // and over an expired deadline
  const int64_t parks = Parks();
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kClosing);
  EXPECT_EQ(pd->Wait(Mode::kWrite, WaitKind::kRestartable), WaitResult::kClosing);
  EXPECT_EQ(Parks(), parks);
  EXPECT_TRUE(pd->closing());
}

TEST(PollDesc, EvictRacingParkAlwaysEndsTheWait) {
  constexpr int kIterations = 500;
  for (int i = 0; i < kIterations; ++i) {
    ScopedPollDesc pd;
    std::atomic<bool> go{false};
    WaitResult r = WaitResult::kOk;
    std::thread waiter([&] {
      while (!go.load()) {
      }
      r = pd->Wait(Mode::kRead, WaitKind::kRestartable);
    });
    go.store(true);
    pd->Evict();
    waiter.join();  // a lost eviction hangs here (ctest's timeout reports it)
    ASSERT_EQ(r, WaitResult::kClosing) << "iteration " << i;
  }
}

// A recycled pollDesc is a new incarnation: not closing, no deadlines, a new epoll tag, so the
// old incarnation's deadline ("a stale timer in flight") and epoll tag mean nothing to it.
TEST(PollDesc, RecycledPollDescStartsFreshAndIgnoresItsOldDeadline) {
  PollDesc* pd = PollDesc::Alloc(1000);
  ASSERT_NE(pd, nullptr);
  const uint64_t old_tag = pd->EpollTag();
  const int64_t old_deadline = Nanotime() + 100 * kMs;
  pd->SetDeadline(Mode::kRead, old_deadline);
  pd->Evict();
  pd->Free();
  PollDesc* again = PollDesc::Alloc(1000);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again, pd) << "the arena's free list is LIFO: the same object comes back";
  EXPECT_FALSE(again->closing());
  EXPECT_EQ(again->deadline(Mode::kRead), 0);
  EXPECT_EQ(again->deadline(Mode::kWrite), 0);
  EXPECT_NE(again->EpollTag(), old_tag);
  EXPECT_FALSE(again->MatchesTag(old_tag));
  EXPECT_TRUE(again->MatchesTag(again->EpollTag()));

  const int64_t base = Parked();
  {
    Waiter reader(again, Mode::kRead);
    ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
    ASSERT_TRUE(WaitUntil([&] { return Nanotime() > old_deadline + 300 * kMs; }));
    EXPECT_FALSE(reader.done()) << "the old incarnation's deadline fired on the new one";
    again->Ready(Mode::kRead);
    EXPECT_EQ(reader.Join(), WaitResult::kOk);
  }
  again->Free();
}

// SetDeadline unparks whatever parker it finds, and may find it after that waiter left: the
// permit is then stale. A stale permit must be a spurious wake-up, never readiness.
TEST(PollDesc, StalePermitIsASpuriousWakeUpNotReadiness) {
  ScopedPollDesc pd;
  const int64_t base = Parked();
  const int64_t parks = Parks();
  std::atomic<bool> readied{false};
  CurrentParker()->Unpark();  // the stale permit
  std::thread notifier([&] {
    ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
    readied.store(true);
    pd->Ready(Mode::kRead);
  });
  EXPECT_EQ(pd->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  EXPECT_TRUE(readied.load()) << "returned on the stale permit";
  notifier.join();
  EXPECT_EQ(Parks(), parks + 1);
}

// The drained hint (poll_desc.h): recorded by a short receive, it holds only while no read
// readiness has been delivered since the count the receive took before its attempt.
TEST(PollDesc, DrainedHintHoldsUntilReadReadinessIsDelivered) {
  ScopedPollDesc pd;
  EXPECT_FALSE(pd->ReadDrained()) << "a new pollDesc has seen no receive";
  pd->NoteReadDrained(pd->read_edges());
  EXPECT_TRUE(pd->ReadDrained());
  pd->Ready(Mode::kWrite);
  EXPECT_TRUE(pd->ReadDrained()) << "write readiness says nothing about the receive queue";
  pd->Ready(Mode::kRead);
  EXPECT_FALSE(pd->ReadDrained());
  pd->NoteReadDrained(pd->read_edges());
  EXPECT_TRUE(pd->ReadDrained());
}

// A delivery between taking the count and recording the short receive (the bytes arrived while
// the receive ran) must lapse the hint, even though it was recorded after the delivery.
TEST(PollDesc, DrainedHintTakenBeforeADeliveryIsAlreadyStale) {
  ScopedPollDesc pd;
  const uint32_t before_attempt = pd->read_edges();
  pd->Ready(Mode::kRead);
  pd->NoteReadDrained(before_attempt);
  EXPECT_FALSE(pd->ReadDrained());
}

TEST(PollDesc, EndingTheDrainedHintIsForGood) {
  ScopedPollDesc pd;
  pd->EndDrainedHint();
  pd->NoteReadDrained(pd->read_edges());
  EXPECT_FALSE(pd->ReadDrained()) << "after urgent data, EOF or an error, a receive may return "
                                     "with nothing new arriving";
}

TEST(PollDesc, RecycledPollDescForgetsTheDrainedHint) {
  PollDesc* pd = PollDesc::Alloc(1000);
  ASSERT_NE(pd, nullptr);
  pd->EndDrainedHint();
  pd->Free();
  PollDesc* again = PollDesc::Alloc(1000);
  ASSERT_NE(again, nullptr);
  again->NoteReadDrained(again->read_edges());
  EXPECT_TRUE(again->ReadDrained()) << "the old incarnation's EOF stuck to the new one";
  again->Free();
  PollDesc* third = PollDesc::Alloc(1000);
  ASSERT_NE(third, nullptr);
  EXPECT_FALSE(third->ReadDrained()) << "the old incarnation's short receive stuck to the new one";
  third->Free();
}

}  // namespace
}  // namespace gonet::core
