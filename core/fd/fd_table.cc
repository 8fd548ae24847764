#include "core/fd/fd_table.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/base/arena.h"
#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/poll/netpoller.h"
#include "core/stats/stats.h"
#include "core/threads/kernel_wait.h"

namespace gonet::core {

std::atomic<FdEntry*> internal::g_fd_chunks[kMaxFds / internal::kFdChunkSize];

namespace {

constexpr int kChunkShift = internal::kFdChunkShift;
constexpr int kChunkSize = internal::kFdChunkSize;
constexpr int kMaxChunks = kMaxFds / kChunkSize;
using internal::g_fd_chunks;

inline uint32_t Generation(uint64_t w) { return static_cast<uint32_t>(w >> 32); }

constinit TypeStableArena<SocketState> g_socket_states;
constinit std::atomic<ArmHook> g_arm_hook{nullptr};  // runtime/ sets it at Init

// Learns an fd gonet did not see being created: inherited across exec, received by SCM_RIGHTS,
// created by libc internals. A handful of syscalls, once per fd.
void Adopt(int fd, FdEntry* e) {
  struct stat st;
  if (sys::Call(SYS_fstat, fd, &st) < 0) return;  // bad fd: the real call reports it
  if (!S_ISSOCK(st.st_mode)) {
    e->kind.store(FdKind::kNotSocket, std::memory_order_release);
    return;
  }
  int type = 0, family = 0;
  socklen_t len = sizeof type;
  sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof family;
  sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &family, &len);
  long fl = sys::Call(SYS_fcntl, fd, F_GETFL, 0);
  SocketState* s = FdTable::NewSocketState();
  if (s == nullptr) return;
  s->type = type;
  s->family = family;
  s->app_nonblock.store(fl >= 0 && (fl & O_NONBLOCK), std::memory_order_relaxed);
  timeval tv{};
  len = sizeof tv;
  if (sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0) {
    s->rcvtimeo_ns.store(TimevalToNs(tv), std::memory_order_relaxed);
  }
  len = sizeof tv;
  if (sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0) {
    s->sndtimeo_ns.store(TimevalToNs(tv), std::memory_order_relaxed);
  }
  int lowat = 1;
  len = sizeof lowat;
  if (sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &len) == 0 && lowat > 1) {
    s->rcvlowat.store(lowat, std::memory_order_relaxed);
  }
  s->refs.store(1, std::memory_order_relaxed);
  SocketState* expect = nullptr;
  if (!e->sock.compare_exchange_strong(expect, s, std::memory_order_acq_rel)) {
    FdTable::Unref(s);  // another thread adopted it first
  } else {
    Count(Stats().fds_adopted);
  }
  e->kind.store(FdKind::kSocket, std::memory_order_release);
}

}  // namespace

FdEntry* FdTable::Find(int fd) {
  if (fd < 0 || fd >= kMaxFds) return nullptr;
  FdEntry* chunk = g_fd_chunks[fd >> kChunkShift].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[fd & (kChunkSize - 1)];
}

FdEntry* internal::GetSlow(int fd) {
  std::atomic<FdEntry*>& slot = g_fd_chunks[fd >> kChunkShift];
  FdEntry* chunk = slot.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    void* mem = mmap(nullptr, sizeof(FdEntry) * kChunkSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    FdEntry* fresh = static_cast<FdEntry*>(mem);
    for (int i = 0; i < kChunkSize; ++i) new (&fresh[i]) FdEntry();
    if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      munmap(mem, sizeof(FdEntry) * kChunkSize);  // another thread won; chunk is theirs
    }
  }
  return &chunk[fd & (kChunkSize - 1)];
}

SocketState* FdTable::NewSocketState() {
  SocketState* s = g_socket_states.Alloc();
  if (s == nullptr) return nullptr;
  s->refs.store(0, std::memory_order_relaxed);
  s->app_nonblock.store(false, std::memory_order_relaxed);
  s->forced_nonblock.store(false, std::memory_order_relaxed);
  s->rcvtimeo_ns.store(0, std::memory_order_relaxed);
  s->sndtimeo_ns.store(0, std::memory_order_relaxed);
  s->rcvlowat.store(1, std::memory_order_relaxed);
  s->short_read_drains.store(false, std::memory_order_relaxed);
  s->type = 0;
  s->family = 0;
  return s;
}

void FdTable::Unref(SocketState* state) {
  if (state != nullptr && state->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    g_socket_states.Free(state);
  }
}

SocketState* FdTable::FindSocket(int fd) {
  FdEntry* e = Find(fd);
  if (e == nullptr || e->kind.load(std::memory_order_acquire) != FdKind::kSocket) return nullptr;
  return e->sock.load(std::memory_order_acquire);
}

bool FdTable::Install(int fd, SocketState* state) {
  FdEntry* e = Get(fd);
  if (e == nullptr || state == nullptr) return false;
  state->refs.fetch_add(1, std::memory_order_relaxed);
  // The kernel just handed out this number, so whatever the slot held is stale: a socket
  // closed behind gonet's back. Its pollDesc can still name the number in epoll: retire it.
  if (PollDesc* old = e->pd.exchange(nullptr, std::memory_order_acq_rel)) {
    Netpoller::Get().Disarm(old);
    old->Free();
  }
  Unref(e->sock.exchange(state, std::memory_order_acq_rel));
  e->kind.store(FdKind::kSocket, std::memory_order_release);
  uint64_t w = e->word.load(std::memory_order_relaxed);
  e->word.store((uint64_t{Generation(w) + 1}) << 32, std::memory_order_release);
  return true;
}

bool FdTable::InstallNew(int fd, int family, int type, bool app_nonblock) {
  SocketState* s = NewSocketState();
  if (s == nullptr) return false;
  s->family = family;
  s->type = type;
  s->app_nonblock.store(app_nonblock, std::memory_order_relaxed);
  if (!Install(fd, s)) {
    s->refs.store(1, std::memory_order_relaxed);
    Unref(s);
    return false;
  }
  return true;
}

void FdTable::ResetAfterFork() {
  g_socket_states.ResetLockAfterFork();
  for (int c = 0; c < kMaxChunks; ++c) {
    FdEntry* chunk = g_fd_chunks[c].load(std::memory_order_relaxed);
    if (chunk == nullptr) continue;
    for (int i = 0; i < kChunkSize; ++i) {
      uint64_t w = chunk[i].word.load(std::memory_order_relaxed);
      chunk[i].word.store(uint64_t{Generation(w)} << 32, std::memory_order_relaxed);
      chunk[i].closer.store(nullptr, std::memory_order_relaxed);
    }
  }
}

int FdRef::Acquire(int fd) {
  FdEntry* e = FdTable::Get(fd);
  if (e == nullptr) return kPassthrough;
  FdKind kind = e->kind.load(std::memory_order_acquire);
  if (GONET_UNLIKELY(kind == FdKind::kUnknown)) {
    Adopt(fd, e);
    kind = e->kind.load(std::memory_order_acquire);
  }
  if (kind != FdKind::kSocket) return kPassthrough;
  // Start loading the socket state before the read-modify-write below, which would otherwise
  // make its (usually cold) line a second miss after the entry's. A hint: socket states are
  // type-stable (never unmapped), and the pointer is read again after the increment.
  __builtin_prefetch(e->sock.load(std::memory_order_relaxed));
  uint64_t w = e->word.fetch_add(1, std::memory_order_acq_rel);
  if (w & kFdClosingBit) {
    // Undo with the same generation check Release uses.
    fd_ = fd;
    entry_ = e;
    generation_ = Generation(w);
    Release();
    return EBADF;
  }
  SocketState* s = e->sock.load(std::memory_order_acquire);
  fd_ = fd;
  entry_ = e;
  generation_ = Generation(w);
  if (s == nullptr) {
    Release();
    return kPassthrough;
  }
  sock_ = s;
  return 0;
}

void FdRef::Release() {
  if (entry_ == nullptr) return;
  FdEntry* e = entry_;
  entry_ = nullptr;
  sock_ = nullptr;
  uint64_t w = e->word.load(std::memory_order_acquire);
  for (;;) {
    if (Generation(w) != generation_ || (w & kFdRefMask) == 0) return;  // slot was reinstalled
    if (e->word.compare_exchange_weak(w, w - 1, std::memory_order_seq_cst)) break;
  }
  // The closer holds one reference of its own and waits for the rest to drain.
  if ((w & kFdClosingBit) && ((w - 1) & kFdRefMask) == 1) {
    if (Parker* closer = e->closer.load(std::memory_order_seq_cst)) closer->Unpark();
  }
}

PollDesc* FdRef::ArmedPollDesc() {
  PollDesc* pd = entry_->pd.load(std::memory_order_acquire);
  if (pd == nullptr) {
    PollDesc* fresh = PollDesc::Alloc(fd_);
    if (fresh == nullptr) return nullptr;
    if (entry_->pd.compare_exchange_strong(pd, fresh, std::memory_order_seq_cst)) {
      pd = fresh;
      // A close that began before the pollDesc existed had nothing to evict (fd_ops.cc
      // BeginClose): this operation must see closing instead, and fail with EBADF.
      if (closing()) pd->Evict();
    } else {
      fresh->Free();
    }
  }
  Netpoller& np = Netpoller::Get();
  if (!np.IsArmed(pd)) {
    if (np.Arm(pd) < 0) return nullptr;
    if (ArmHook hook = g_arm_hook.load(std::memory_order_acquire)) hook();
  }
  return pd;
}

// --- The close protocol (fd_table.h), Go's FD.Close ---------------------------------------------

// Marks e closing, evicts its waiters and waits for in-flight operations to leave. Returns false
// if another close is already in progress (the kernel gives the loser EBADF).
bool BeginClose(int fd, FdEntry* e) {
  Parker* me = CurrentParker();
  uint64_t w = e->word.load(std::memory_order_acquire);
  for (;;) {
    if (w & kFdClosingBit) return false;
    if (e->word.compare_exchange_weak(w, (w | kFdClosingBit) + 1, std::memory_order_seq_cst)) break;
  }
  // Only the winner of the closing CAS names itself: a losing concurrent close must not steal
  // the first closer's wake-up. seq_cst pairs with FdRef::Release (CAS on word, then load of
  // closer): either Release sees us and unparks, or our loop below sees the drained count.
  e->closer.store(me, std::memory_order_seq_cst);
  // seq_cst pairs with FdRef::ArmedPollDesc, which publishes a new pollDesc and then checks
  // closing: either we see its pollDesc here and evict it, or it sees closing and gives up.
  if (PollDesc* pd = e->pd.load(std::memory_order_seq_cst)) pd->Evict();
  // Our own reference is the 1 that remains when everyone else has left. Operations parked on
  // the pollDesc leave at once; threads blocked in the kernel (kernel_wait.h) leave when SIGURG
  // reaches them, so it is sent again every millisecond. A thread that blocks SIGURG never
  // leaves: after a second the number is closed anyway, the kernel's own behaviour.
  // Only rounds in which some thread is still blocked in the kernel count towards giving up: an
  // operation that is merely running (not blocked) always leaves, however slow the machine.
  for (int stuck = 0; (e->word.load(std::memory_order_seq_cst) & kFdRefMask) > 1;) {
    if (WakeKernelWaiters(fd) > 0 && ++stuck == 1000) break;
    me->Park(DeadlineAfter(1000000), WaitKind::kRestartable);
  }
  return true;
}

// The slot is empty from here on; the number still belongs to us until the real close.
void RetireSlot(FdEntry* e) {
  if (PollDesc* pd = e->pd.exchange(nullptr, std::memory_order_acq_rel)) {
    Netpoller::Get().Disarm(pd);
    pd->Free();
  }
  FdTable::Unref(e->sock.exchange(nullptr, std::memory_order_acq_rel));
  e->kind.store(FdKind::kUnknown, std::memory_order_release);
}

// After the real close: reopen the slot for a future incarnation, unless the number was already
// reused and reinstalled by another thread (its generation moved on).
void EndClose(FdEntry* e) {
  uint64_t w = e->word.load(std::memory_order_acquire);
  if (w & kFdClosingBit) {
    uint64_t fresh = (uint64_t{static_cast<uint32_t>(w >> 32) + 1}) << 32;
    e->word.compare_exchange_strong(w, fresh, std::memory_order_acq_rel);
  }
  // Only our own name: once the slot is open (here, or by Install on dup2's path), a close of
  // the next incarnation may already have named its closer.
  Parker* me = CurrentParker();
  e->closer.compare_exchange_strong(me, nullptr, std::memory_order_acq_rel);
}

void SetArmHook(ArmHook hook) { g_arm_hook.store(hook, std::memory_order_release); }

}  // namespace gonet::core
