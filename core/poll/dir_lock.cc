#include "core/poll/dir_lock.h"

#include "core/base/base.h"

namespace gonet::core {

WaitResult DirLock::Lock(const std::atomic<bool>& closing, int64_t deadline_ns, WaitKind kind) {
  uint32_t expect = kFree;
  if (GONET_LIKELY(state_.compare_exchange_strong(expect, kHeld, std::memory_order_acquire))) {
    return WaitResult::kOk;
  }
  Waiter w{CurrentParker()};
  {
    SpinGuard g(mu_);
    for (;;) {
      uint32_t s = state_.load(std::memory_order_relaxed);
      if (s == kFree) {
        if (state_.compare_exchange_weak(s, kHeld, std::memory_order_acquire)) {
          return WaitResult::kOk;
        }
        continue;
      }
      // kHeld -> kQueued may race with the holder's fast-path unlock (kHeld -> kFree): retry.
      if (s == kQueued || state_.compare_exchange_weak(s, kQueued, std::memory_order_acq_rel)) {
        break;
      }
    }
    if (tail_ != nullptr) {
      tail_->next = &w;
    } else {
      head_ = &w;
    }
    tail_ = &w;
  }
  // Leaving the queue, on every way out that is not a grant: unlink, or pass on a grant that
  // raced with the departure. A destructor, because pthread_cancel unwinds out of Park and the
  // queue must not keep a pointer to this dead stack frame.
  struct Departure {
    DirLock* lock;
    Waiter* w;
    bool done = false;
    ~Departure() {
      if (done) return;
      bool granted;
      {
        SpinGuard g(lock->mu_);
        granted = w->granted.load(std::memory_order_acquire);
        if (!granted) lock->Unlink(w);
      }
      if (granted) lock->Unlock();  // handed to us while we were leaving: pass it on
    }
  } departure{this, &w};
  for (;;) {
    if (w.granted.load(std::memory_order_acquire)) {
      departure.done = true;
      return WaitResult::kOk;
    }
    WaitResult leave = WaitResult::kOk;
    if (closing.load(std::memory_order_seq_cst)) {
      leave = WaitResult::kClosing;
    } else {
      ParkResult r = w.parker->Park(deadline_ns, kind);
      if (r == ParkResult::kTimedOut) leave = WaitResult::kTimeout;
      if (r == ParkResult::kInterrupted) leave = WaitResult::kInterrupted;
      if (leave == WaitResult::kOk) continue;
    }
    return leave;  // ~Departure unlinks us
  }
}

void DirLock::Unlink(Waiter* w) {
  Waiter* prev = nullptr;
  for (Waiter* it = head_; it != nullptr; prev = it, it = it->next) {
    if (it != w) continue;
    if (prev != nullptr) {
      prev->next = it->next;
    } else {
      head_ = it->next;
    }
    if (tail_ == it) tail_ = prev;
    break;
  }
  // The holder is still there; with nobody queued its fast-path unlock must work again.
  if (head_ == nullptr) state_.store(kHeld, std::memory_order_release);
}

void DirLock::Unlock() {
  uint32_t expect = kHeld;
  if (GONET_LIKELY(state_.compare_exchange_strong(expect, kFree, std::memory_order_release))) {
    return;
  }
  Parker* p;
  {
    SpinGuard g(mu_);
    Waiter* next = head_;
    if (next == nullptr) {
      // Queued waiters all left between our failed CAS and here.
      state_.store(kFree, std::memory_order_release);
      return;
    }
    head_ = next->next;
    if (head_ == nullptr) {
      tail_ = nullptr;
      state_.store(kHeld, std::memory_order_release);
    }
    // The waiter may return (and its stack frame die) as soon as granted is visible, so read
    // the parker first; parkers are type-stable, so unparking after unlocking is safe.
    p = next->parker;
    next->granted.store(true, std::memory_order_release);
  }
  p->Unpark();
}

void DirLock::WakeAll() {
  SpinGuard g(mu_);
  for (Waiter* it = head_; it != nullptr; it = it->next) it->parker->Unpark();
}

void DirLock::ResetAfterFork() {
  head_ = tail_ = nullptr;
  state_.store(kFree, std::memory_order_relaxed);
}

}  // namespace gonet::core
