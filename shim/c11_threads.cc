// C11 <threads.h> in fibers mode. glibc implements thrd_*, mtx_*, cnd_* and call_once on top of
// its pthread functions, but calls them through internal aliases, not the PLT, so gonet's
// pthread hooks never see them: thrd_create would start an OS thread, and mtx_unlock's wake
// could not reach a fiber waiting on the same mutex (futex_table.h, rule 5). Each is mapped here
// onto the pthread name it stands for, as glibc does (mtx_t is a pthread_mutex_t, cnd_t a
// pthread_cond_t, once_flag a pthread_once_t), with glibc's error mapping. mtx_init, cnd_init and
// the destroys stay glibc's. In every other mode each call goes to glibc unchanged.
#include <pthread.h>
#include <sched.h>
#include <threads.h>
#include <time.h>

#include <cerrno>
#include <cstdint>

#include "core/base/base.h"
#include "core/runtime/runtime.h"
#include "shim/abi.h"
#include "shim/next.h"

namespace core = gonet::core;

namespace {

bool Fibers() { return core::mode() == core::RunMode::kFibers; }

// glibc's thrd_err_map.
int ThrdResult(int err) {
  switch (err) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

pthread_mutex_t* AsMutex(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* AsCond(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

}  // namespace

// --- threads ---------------------------------------------------------------------------------

GONET_HOOK int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  if (!Fibers()) return NEXT(thrd_create)(thr, func, arg);
  // The start routine returns an int where pthread's returns a pointer, in the same register:
  // thrd_join takes its low 32 bits, as glibc's does (its start_thread calls it the same way).
  auto start = reinterpret_cast<void* (*)(void*)>(reinterpret_cast<void (*)()>(func));
  pthread_t t;
  int r = pthread_create(&t, nullptr, start, arg);
  if (r == 0) *thr = t;
  return ThrdResult(r);
}

GONET_HOOK int thrd_join(thrd_t thr, int* res) {
  if (!Fibers()) return NEXT(thrd_join)(thr, res);
  void* ret = nullptr;
  int r = pthread_join(thr, &ret);
  if (r == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<uintptr_t>(ret));
  return ThrdResult(r);
}

GONET_HOOK int thrd_detach(thrd_t thr) {
  if (!Fibers()) return NEXT(thrd_detach)(thr);
  return ThrdResult(pthread_detach(thr));
}

GONET_HOOK thrd_t thrd_current() {
  if (!Fibers()) return NEXT(thrd_current)();
  return pthread_self();
}

GONET_HOOK int thrd_equal(thrd_t a, thrd_t b) { return a == b; }

GONET_HOOK void thrd_exit(int res) {
  if (Fibers()) pthread_exit(reinterpret_cast<void*>(static_cast<uintptr_t>(res)));
  NEXT(thrd_exit)(res);
  __builtin_unreachable();
}

GONET_HOOK void thrd_yield() {
  if (!Fibers()) return NEXT(thrd_yield)();
  sched_yield();
}

// glibc: 0 slept, -1 interrupted by a signal (remaining filled in), -2 another error.
GONET_HOOK int thrd_sleep(const timespec* duration, timespec* remaining) {
  if (!Fibers()) return NEXT(thrd_sleep)(duration, remaining);
  int r = clock_nanosleep(CLOCK_REALTIME, 0, duration, remaining);
  return r == 0 ? 0 : r == EINTR ? -1 : -2;
}

// --- mutexes, condition variables, once ----------------------------------------------------

GONET_HOOK int mtx_lock(mtx_t* m) {
  if (!Fibers()) return NEXT(mtx_lock)(m);
  return ThrdResult(pthread_mutex_lock(AsMutex(m)));
}

GONET_HOOK int mtx_timedlock(mtx_t* __restrict m, const timespec* __restrict abstime) {
  if (!Fibers()) return NEXT(mtx_timedlock)(m, abstime);
  return ThrdResult(pthread_mutex_timedlock(AsMutex(m), abstime));
}

GONET_HOOK int mtx_trylock(mtx_t* m) {
  if (!Fibers()) return NEXT(mtx_trylock)(m);
  return ThrdResult(pthread_mutex_trylock(AsMutex(m)));
}

GONET_HOOK int mtx_unlock(mtx_t* m) {
  if (!Fibers()) return NEXT(mtx_unlock)(m);
  return ThrdResult(pthread_mutex_unlock(AsMutex(m)));
}

GONET_HOOK int cnd_wait(cnd_t* c, mtx_t* m) {
  if (!Fibers()) return NEXT(cnd_wait)(c, m);
  return ThrdResult(pthread_cond_wait(AsCond(c), AsMutex(m)));
}

GONET_HOOK int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m,
                             const timespec* __restrict abstime) {
  if (!Fibers()) return NEXT(cnd_timedwait)(c, m, abstime);
  return ThrdResult(pthread_cond_timedwait(AsCond(c), AsMutex(m), abstime));
}

GONET_HOOK int cnd_signal(cnd_t* c) {
  if (!Fibers()) return NEXT(cnd_signal)(c);
  return ThrdResult(pthread_cond_signal(AsCond(c)));
}

GONET_HOOK int cnd_broadcast(cnd_t* c) {
  if (!Fibers()) return NEXT(cnd_broadcast)(c);
  return ThrdResult(pthread_cond_broadcast(AsCond(c)));
}

GONET_HOOK void call_once(once_flag* flag, void (*func)()) {
  if (!Fibers()) return NEXT(call_once)(flag, func);
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), func);
}
