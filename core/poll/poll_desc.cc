#include "core/poll/poll_desc.h"

#include "core/base/arena.h"
#include "core/base/base.h"
#include "core/base/spinlock.h"
#include "core/stats/stats.h"

namespace gonet::core {

namespace {
constinit TypeStableArena<PollDesc> g_arena;
}  // namespace

PollDesc* PollDesc::Alloc(int fd) {
  PollDesc* pd = g_arena.Alloc();
  if (pd == nullptr) return nullptr;
  pd->fd_ = fd;
  pd->rg_.store(kPdNil, std::memory_order_relaxed);
  pd->wg_.store(kPdNil, std::memory_order_relaxed);
  pd->rd_.store(0, std::memory_order_relaxed);
  pd->wd_.store(0, std::memory_order_relaxed);
  pd->armed_epoch_.store(0, std::memory_order_relaxed);
  pd->hint_ended_.store(false, std::memory_order_relaxed);
  pd->drained_ = false;
  pd->closing_.store(false, std::memory_order_seq_cst);
  return pd;
}

void PollDesc::Free() {
  // Any event or waiter still naming the old incarnation now fails the fdseq match.
  fdseq_.fetch_add(1, std::memory_order_acq_rel);
  GONET_DCHECK(!rlock_.held() && !wlock_.held(), "pollDesc freed with a direction locked");
  g_arena.Free(this);
}

PollDesc* PollDesc::FromIndex(uint32_t index) { return g_arena.Get(index); }

uint32_t PollDesc::index() const { return TypeStableArena<PollDesc>::IndexOf(this); }

void PollDesc::ResetAllAfterFork() {
  g_arena.ResetLockAfterFork();
  uint32_t n = g_arena.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    PollDesc* pd = g_arena.Get(i);
    if (pd == nullptr) continue;
    pd->rg_.store(kPdNil, std::memory_order_relaxed);
    pd->wg_.store(kPdNil, std::memory_order_relaxed);
    pd->rlock_.ResetAfterFork();
    pd->wlock_.ResetAfterFork();
    pd->armed_epoch_.store(0, std::memory_order_relaxed);
    pd->drained_ = false;
  }
}

WaitResult PollDesc::CheckErr(Mode mode) const {
  if (closing_.load(std::memory_order_seq_cst)) return WaitResult::kClosing;
  int64_t d = Deadline(mode).load(std::memory_order_seq_cst);
  if (d != 0 && d <= Nanotime()) return WaitResult::kTimeout;
  return WaitResult::kOk;
}

WaitResult PollDesc::Wait(Mode mode, WaitKind kind) {
  WaitResult err = CheckErr(mode);
  if (err != WaitResult::kOk) return err;
  // Every park is matched by exactly one wake reason (parks == wakes_io + wakes_timeout +
  // wakes_close + wakes_signal + threads_parked, which the soak checks): a reason is counted only
  // for a Block that really parked; wakes_io is counted inside Block.
  for (;;) {
    bool parked = false;
    BlockResult b = Block(mode, kind, &parked);
    if (b == BlockResult::kReady) return WaitResult::kOk;
    if (b == BlockResult::kInterrupted) {
      if (parked) Count(Stats().wakes_signal);
      return WaitResult::kInterrupted;
    }
    err = CheckErr(mode);
    if (err == WaitResult::kClosing) {
      if (parked) Count(Stats().wakes_close);
      return err;
    }
    if (err == WaitResult::kTimeout) {
      if (parked) Count(Stats().wakes_timeout);
      return err;
    }
    // Woken without readiness and without an error: the deadline moved. Park again.
  }
}

PollDesc::BlockResult PollDesc::Block(Mode mode, WaitKind kind, bool* parked) {
  std::atomic<uintptr_t>& gpp = Sema(mode);
  for (;;) {
    uintptr_t old = gpp.load(std::memory_order_seq_cst);
    if (old == kPdReady) {
      if (gpp.compare_exchange_strong(old, kPdNil, std::memory_order_seq_cst)) {
        return BlockResult::kReady;
      }
      continue;
    }
    if (old != kPdNil) {
      // DirLock admits one waiter per direction; a second one here is a gonet bug. Fail the
      // operation with EINTR (which every caller of a blocking call must handle) instead of
      // hanging or crashing the host.
      GONET_DCHECK(false, "pollDesc: double wait");
      return BlockResult::kInterrupted;
    }
    if (gpp.compare_exchange_strong(old, kPdWait, std::memory_order_seq_cst)) break;
  }

  // Need to recheck error states after setting gpp to kPdWait: a close or past deadline stored
  // before our CAS is seen here; one stored after it finds kPdWait/Parker* and unblocks us.
  Parker* me = CurrentParker();
  const uintptr_t self = reinterpret_cast<uintptr_t>(me);
  bool interrupted = false;
  if (CheckErr(mode) == WaitResult::kOk) {
    uintptr_t expect = kPdWait;
    if (gpp.compare_exchange_strong(expect, self, std::memory_order_seq_cst)) {
      Count(Stats().parks);
      Count(Stats().threads_parked);
      *parked = true;
      // pthread_cancel unwinds out of Park (thread_parker.h): leave the semaphore as a waiter
      // that gave up would, or the next waiter on this fd finds a dead thread's parker in it.
      struct CancelGuard {
        std::atomic<uintptr_t>& gpp;
        uintptr_t self;
        bool armed = true;
        ~CancelGuard() {
          if (!armed) return;
          uintptr_t e = self;
          gpp.compare_exchange_strong(e, kPdNil, std::memory_order_seq_cst);
          Count(Stats().threads_parked, -1);
        }
      } cancel_guard{gpp, self};
      bool woken_by_io = false;
      while (gpp.load(std::memory_order_seq_cst) == self) {
        int64_t d = Deadline(mode).load(std::memory_order_seq_cst);
        if (d != 0 && d <= Nanotime()) {
          // Our own deadline: take ourselves out, unless a notifier did first.
          uintptr_t e = self;
          if (gpp.compare_exchange_strong(e, kPdNil, std::memory_order_seq_cst)) break;
          continue;
        }
        ParkResult r = me->Park(d, kind);
        if (r == ParkResult::kInterrupted) {
          uintptr_t e = self;
          if (gpp.compare_exchange_strong(e, kPdNil, std::memory_order_seq_cst)) {
            interrupted = true;
            break;
          }
        }
        // kTimedOut: loop and re-read the deadline, which may have been extended (stale timer).
      }
      cancel_guard.armed = false;
      woken_by_io = gpp.load(std::memory_order_seq_cst) == kPdReady;
      Count(Stats().threads_parked, -1);
      if (woken_by_io) Count(Stats().wakes_io);
    }
  }
  uintptr_t old = gpp.exchange(kPdNil, std::memory_order_seq_cst);
  GONET_DCHECK(old <= kPdWait, "pollDesc: corrupted semaphore");
  if (old == kPdReady) return BlockResult::kReady;
  return interrupted ? BlockResult::kInterrupted : BlockResult::kNotReady;
}

Parker* PollDesc::Unblock(Mode mode, bool ioready) {
  std::atomic<uintptr_t>& gpp = Sema(mode);
  for (;;) {
    uintptr_t old = gpp.load(std::memory_order_seq_cst);
    if (old == kPdReady) return nullptr;
    // Only IO readiness is remembered; a timeout or close is re-checked by the waiter itself.
    if (old == kPdNil && !ioready) return nullptr;
    uintptr_t next = ioready ? kPdReady : kPdNil;
    if (gpp.compare_exchange_strong(old, next, std::memory_order_seq_cst)) {
      // kPdWait: the waiter has not committed; its commit CAS fails and it never parks.
      return old > kPdWait ? reinterpret_cast<Parker*>(old) : nullptr;
    }
  }
}

void PollDesc::Ready(Mode mode) {
  // The count moves before the token is set: a reader that finds the token consumed by someone
  // else (a poll on this fd) then also finds the count moved, and asks the kernel.
  if (mode == Mode::kRead) read_edges_.fetch_add(1, std::memory_order_acq_rel);
  if (Parker* p = Unblock(mode, true)) p->Unpark();
  if (Parker* w = watcher_.load(std::memory_order_seq_cst)) w->Unpark();
}

void PollDesc::SetDeadline(Mode mode, int64_t deadline_ns) {
  Deadline(mode).store(deadline_ns < 0 ? 0 : deadline_ns, std::memory_order_seq_cst);
  // A parked waiter sleeps with the old deadline as its timeout: wake it so it re-reads the new
  // one (an earlier deadline takes effect now, a later one is slept on). If it already left, the
  // permit is a harmless spurious wake-up for that parker (parker.h).
  uintptr_t g = Sema(mode).load(std::memory_order_seq_cst);
  if (g > kPdWait) reinterpret_cast<Parker*>(g)->Unpark();
}

void PollDesc::Evict() {
  closing_.store(true, std::memory_order_seq_cst);
  if (Parker* p = Unblock(Mode::kRead, false)) p->Unpark();
  if (Parker* p = Unblock(Mode::kWrite, false)) p->Unpark();
  rlock_.WakeAll();
  wlock_.WakeAll();
  if (Parker* w = watcher_.load(std::memory_order_seq_cst)) w->Unpark();
}

}  // namespace gonet::core
