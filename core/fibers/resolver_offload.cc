#include "core/fibers/resolver_offload.h"

#include <netdb.h>
#include <pthread.h>

#include <cerrno>
#include <cstdint>

#include "core/fibers/fiber_sync.h"
#include "core/fibers/syscall_offload.h"

namespace gonet::core {
namespace {

// Locks for the states fibers share (header: One state, one call at a time); two states that
// pick the same lock only wait for each other.
constexpr int kStateLocks = 16;
pthread_mutex_t g_state_locks[kStateLocks] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER};

pthread_mutex_t* StateLock(res_state statp) {
  auto a = reinterpret_cast<uintptr_t>(statp);
  return &g_state_locks[(a >> 6) % kStateLocks];  // a struct __res_state is ~570 bytes
}

// One resolver call, on the calling fiber's stack while it parks.
struct ResolverJob {
  long (*fn)(void*);
  void* arg;
  res_state statp;
  ResStateSlotFn thread_slot;
  int h_errno_in;   // the caller's, set on the helper before fn
  int h_errno_out;  // the helper's after fn, the caller's after the call
};

// On the helper (or inline): fn as the calling thread would run it (header).
long RunResolverJob(void* p) {
  auto* job = static_cast<ResolverJob*>(p);
  h_errno = job->h_errno_in;
  res_state* slot = job->thread_slot != nullptr ? job->thread_slot() : nullptr;
  res_state own = nullptr;
  if (slot != nullptr) {
    own = *slot;
    *slot = job->statp;
  }
  long r = job->fn(job->arg);
  if (slot != nullptr) *slot = own;
  job->h_errno_out = h_errno;
  return r;
}

}  // namespace

long OffloadResolver(long (*fn)(void*), void* arg, res_state statp, ResStateSlotFn thread_slot) {
  if (!InFiber()) return fn(arg);
  // Shared by the worker's fibers: this call alone uses it until it returns.
  pthread_mutex_t* lock = statp == __res_state() ? StateLock(statp) : nullptr;
  if (lock != nullptr) {
    const int err = errno;  // the program's, for the call
    MutexLock(lock, 0);
    errno = err;
  }
  ResolverJob job{fn, arg, statp, thread_slot, h_errno, 0};
  long r = Offload(&RunResolverJob, &job);
  if (lock != nullptr) {
    const int err = errno;
    MutexUnlock(lock);
    errno = err;
  }
  h_errno = job.h_errno_out;
  return r;
}

}  // namespace gonet::core
