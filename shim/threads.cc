// pthread_* and sleeps in fibers mode (core/fibers/fiber_scheduler.h, core/fibers/fiber_sync.h).
//
// In fibers mode pthread_create starts a fiber, and the calls that would block a thread
// (join, mutexes, condition variables, unnamed semaphores, sleeps, sched_yield) park the calling
// fiber instead of the worker under it. Mutexes and condition variables go through the fiber-aware
// implementation for every caller, OS threads included, because one mutex may be shared by a
// fiber and the main thread. In every other mode, and for what fibers mode leaves to glibc
// (robust, priority and process-shared mutexes, process-shared condvars), each call goes to libc
// unchanged; a wait on a process-private condvar with such a mutex is still gonet's (fiber_sync.h:
// one condvar, one protocol).
//
// A pthread_t that pthread_create returned for a fiber is the FiberTask's address; calls that
// take such a handle (every one in glibc's list: see "calls that take a fiber's pthread_t") are
// answered here.
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/base/base.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_stack.h"
#include "core/fibers/fiber_sync.h"
#include "core/fibers/fiber_tls.h"
#include "core/fibers/key_kind.h"
#include "core/runtime/runtime.h"
#include "shim/abi.h"
#include "shim/next.h"

namespace core = gonet::core;
using core::FiberScheduler;
using core::FiberTask;

namespace {

bool Fibers() { return core::mode() == core::RunMode::kFibers; }

FiberTask* AsTask(pthread_t t) {
  auto* p = reinterpret_cast<void*>(t);
  return FiberScheduler::IsTask(p) ? static_cast<FiberTask*>(p) : nullptr;
}

// The stack size the program asked for, or 0 if it kept glibc's default (which follows
// RLIMIT_STACK, 8 MiB typically: far more than a fiber needs, so gonet's default applies).
size_t RequestedStack(const pthread_attr_t* attr) {
  if (attr == nullptr) return 0;
  size_t size = 0;
  if (pthread_attr_getstacksize(attr, &size) != 0) return 0;
  pthread_attr_t def;
  size_t def_size = 0;
  if (pthread_getattr_default_np(&def) == 0) {
    pthread_attr_getstacksize(&def, &def_size);
    pthread_attr_destroy(&def);
  }
  return size == def_size ? 0 : size;
}

int64_t RelativeDeadline(const timespec* rel) {
  if (rel == nullptr) return 0;
  int64_t ns = core::TimespecNs(*rel);
  return ns <= 0 ? core::Nanotime() : core::DeadlineAfter(ns);
}

// A sleep a signal handler ended: EINTR, and what was left (nanosleep's rem).
int Interrupted(int64_t deadline_ns, timespec* rem) {
  if (rem != nullptr) {
    int64_t left = deadline_ns - core::Nanotime();
    if (left < 0) left = 0;
    rem->tv_sec = static_cast<time_t>(left / 1000000000);
    rem->tv_nsec = static_cast<long>(left % 1000000000);
  }
  errno = EINTR;
  return -1;
}

// A setter on a fiber's attributes (core/fibers/fiber_thread_state.h), which it allocates.
template <typename Fn, typename... Args>
int WithState(FiberTask* t, Fn fn, Args... args) {
  core::FiberThreadState* s = t->thread_state();
  return s != nullptr ? fn(*s, args...) : ENOMEM;
}

}  // namespace

// --- threads -------------------------------------------------------------------------------

GONET_HOOK int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                              void* arg) {
  if (!Fibers()) return NEXT(pthread_create)(thread, attr, start, arg);
  int detach = PTHREAD_CREATE_JOINABLE;
  if (attr != nullptr) pthread_attr_getdetachstate(attr, &detach);
  FiberTask* t = nullptr;
  int r = FiberScheduler::Spawn(RequestedStack(attr), start, arg, detach == PTHREAD_CREATE_DETACHED,
                                &t);
  if (r == 0) *thread = reinterpret_cast<pthread_t>(t);
  return r;
}

GONET_HOOK int pthread_join(pthread_t thread, void** retval) {
  if (FiberTask* t = AsTask(thread)) return t->Join(retval);
  return NEXT(pthread_join)(thread, retval);
}

GONET_HOOK int pthread_tryjoin_np(pthread_t thread, void** retval) {
  if (FiberTask* t = AsTask(thread)) return t->Join(retval, -1);
  return NEXT(pthread_tryjoin_np)(thread, retval);
}

GONET_HOOK int pthread_timedjoin_np(pthread_t thread, void** retval, const timespec* abstime) {
  FiberTask* t = AsTask(thread);
  if (t == nullptr) return NEXT(pthread_timedjoin_np)(thread, retval, abstime);
  if (abstime == nullptr) return t->Join(retval);
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  return t->Join(retval, core::MonotonicDeadline(CLOCK_REALTIME, *abstime));
}

GONET_HOOK int pthread_clockjoin_np(pthread_t thread, void** retval, clockid_t clock,
                                    const timespec* abstime) {
  FiberTask* t = AsTask(thread);
  if (t == nullptr) return NEXT(pthread_clockjoin_np)(thread, retval, clock, abstime);
  if (abstime == nullptr) return t->Join(retval);
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  return t->Join(retval, core::MonotonicDeadline(clock, *abstime));
}

GONET_HOOK int pthread_detach(pthread_t thread) {
  if (FiberTask* t = AsTask(thread)) return t->Detach();
  return NEXT(pthread_detach)(thread);
}

GONET_HOOK void pthread_exit(void* retval) {
  if (FiberTask* t = FiberScheduler::Current()) t->Exit(retval);
  NEXT(pthread_exit)(retval);
  __builtin_unreachable();
}

GONET_HOOK pthread_t pthread_self() {
  if (FiberTask* t = FiberScheduler::Current()) return reinterpret_cast<pthread_t>(t);
  return NEXT(pthread_self)();
}

GONET_HOOK int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

GONET_HOOK int pthread_getattr_np(pthread_t thread, pthread_attr_t* attr) {
  FiberTask* t = AsTask(thread);
  if (t == nullptr) return NEXT(pthread_getattr_np)(thread, attr);
  // Report the fiber's own stack, usable part only, as glibc reports a thread's.
  const core::FiberStack& s = t->stack();
  int r = pthread_attr_init(attr);
  if (r != 0) return r;
  // And what glibc reads from the thread: detach state, scheduling, (affinity is left unset,
  // as glibc leaves it when the thread has the default).
  if (t->detached()) pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
  int policy = 0;
  sched_param param{};
  core::FiberGetSchedParam(t->thread_state_if_any(), &policy, &param);
  pthread_attr_setschedpolicy(attr, policy);
  pthread_attr_setschedparam(attr, &param);
  return pthread_attr_setstack(attr, static_cast<char*>(s.top()) - s.usable(), s.usable());
}

// --- calls that take a fiber's pthread_t (glibc 2.36's list) ---------------------------------
// Each either answers for the fiber (the attribute is the fiber's: fibers/fiber_thread_state.h)
// or maps the call to the OS thread that runs it; the reason is given with each. join, tryjoin,
// timedjoin, clockjoin, detach, equal, getattr_np, exit and self are above; kill, sigqueue and
// cancel below.

// The name is the fiber's: the worker's comm is shared by every fiber it runs.
GONET_HOOK int pthread_setname_np(pthread_t thread, const char* name) {
  if (FiberTask* t = AsTask(thread)) return WithState(t, core::FiberSetName, name);
  if (thread == pthread_self()) core::ForgetOsThreadState();
  return NEXT(pthread_setname_np)(thread, name);
}

GONET_HOOK int pthread_getname_np(pthread_t thread, char* buf, size_t len) {
  if (FiberTask* t = AsTask(thread)) return core::FiberGetName(t->thread_state_if_any(), buf, len);
  return NEXT(pthread_getname_np)(thread, buf, len);
}

// Scheduling is the fiber's attribute: gonet's workers run every fiber alike, and changing the
// worker's policy would change its other fibers' and gonet's own.
GONET_HOOK int pthread_getschedparam(pthread_t thread, int* policy, sched_param* param) {
  if (FiberTask* t = AsTask(thread)) {
    return core::FiberGetSchedParam(t->thread_state_if_any(), policy, param);
  }
  return NEXT(pthread_getschedparam)(thread, policy, param);
}

GONET_HOOK int pthread_setschedparam(pthread_t thread, int policy, const sched_param* param) {
  if (FiberTask* t = AsTask(thread)) {
    return WithState(t, core::FiberSetSchedParam, policy, param);
  }
  if (thread == pthread_self()) core::ForgetOsThreadState();
  return NEXT(pthread_setschedparam)(thread, policy, param);
}

GONET_HOOK int pthread_setschedprio(pthread_t thread, int prio) {
  if (FiberTask* t = AsTask(thread)) return WithState(t, core::FiberSetSchedPrio, prio);
  if (thread == pthread_self()) core::ForgetOsThreadState();
  return NEXT(pthread_setschedprio)(thread, prio);
}

// Affinity is the fiber's attribute, for the same reason as scheduling.
GONET_HOOK int pthread_getaffinity_np(pthread_t thread, size_t bytes, cpu_set_t* set) {
  if (FiberTask* t = AsTask(thread))
    return core::FiberGetAffinity(t->thread_state_if_any(), bytes, set);
  return NEXT(pthread_getaffinity_np)(thread, bytes, set);
}

GONET_HOOK int pthread_setaffinity_np(pthread_t thread, size_t bytes, const cpu_set_t* set) {
  if (FiberTask* t = AsTask(thread)) return WithState(t, core::FiberSetAffinity, bytes, set);
  return NEXT(pthread_setaffinity_np)(thread, bytes, set);
}

// Mapped to the OS thread that runs the fiber's worker: the kernel accounts CPU time per OS
// thread only, so a fiber's own share cannot be told apart; that thread's clock is the nearest
// true one (it advances while the fiber runs, and with its worker's other fibers).
GONET_HOOK int pthread_getcpuclockid(pthread_t thread, clockid_t* clock) {
  FiberTask* t = AsTask(thread);
  if (t == nullptr) return NEXT(pthread_getcpuclockid)(thread, clock);
  int tid = t->MachineTid();
  if (tid == 0) return ESRCH;
  // The kernel's per-thread CPU clock id (CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD), as glibc makes it.
  *clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
  return 0;
}

// A fiber's signal is pending on the fiber and its handler runs there (core/fibers/
// fiber_signals.h): the kernel cannot direct a signal at a fiber.
GONET_HOOK int pthread_kill(pthread_t thread, int sig) {
  if (FiberTask* t = AsTask(thread)) return t->Kill(sig, SI_TKILL, sigval{});
  return NEXT(pthread_kill)(thread, sig);
}

GONET_HOOK int pthread_sigqueue(pthread_t thread, int sig, const sigval value) {
  if (FiberTask* t = AsTask(thread)) return t->Kill(sig, SI_QUEUE, value);
  return NEXT(pthread_sigqueue)(thread, sig, value);
}

// A fiber's mask is its own (core/fibers/fiber_signals.h).
GONET_HOOK int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  if (FiberTask* t = FiberScheduler::Current()) return t->SigMask(how, set, old);
  return NEXT(pthread_sigmask)(how, set, old);
}

GONET_HOOK int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  if (FiberTask* t = FiberScheduler::Current()) {
    if (int e = t->SigMask(how, set, old); e != 0) {
      errno = e;
      return -1;
    }
    return 0;
  }
  return NEXT(sigprocmask)(how, set, old);
}

// Cancellation of a fiber is the fiber's (core/fibers/fiber_signals.h): glibc's would signal
// the worker and unwind whatever fiber it runs.
GONET_HOOK int pthread_cancel(pthread_t thread) {
  if (FiberTask* t = AsTask(thread)) return t->Cancel();
  return NEXT(pthread_cancel)(thread);
}

GONET_HOOK int pthread_setcancelstate(int state, int* old) {
  if (FiberTask* t = FiberScheduler::Current()) return t->SetCancelState(state, old);
  return NEXT(pthread_setcancelstate)(state, old);
}

GONET_HOOK int pthread_setcanceltype(int type, int* old) {
  if (FiberTask* t = FiberScheduler::Current()) return t->SetCancelType(type, old);
  return NEXT(pthread_setcanceltype)(type, old);
}

GONET_HOOK void pthread_testcancel() {
  if (FiberTask* t = FiberScheduler::Current()) return t->TestCancel();
  NEXT(pthread_testcancel)();
}

GONET_HOOK int sched_yield() {
  if (FiberTask* t = FiberScheduler::Current()) {
    t->Yield();
    return 0;
  }
  return NEXT(sched_yield)();
}

// --- C++ thread_local destructors: per fiber ------------------------------------------------
// A registration from a fiber, for an object whose TLS is per fiber, belongs to the fiber and
// runs at its exit (core/fibers/fiber_thread_exit.cc). Everything else is glibc's: OS threads,
// and objects whose TLS stays per worker (a runtime's), whose destructor must run with it.

GONET_HOOK int __cxa_thread_atexit_impl(void (*fn)(void*), void* obj, void* dso_symbol) {
  FiberTask* t = FiberScheduler::Current();
  if (t != nullptr && core::fiber_tls::PerFiber(dso_symbol)) return t->AtThreadExit(fn, obj);
  return NEXT(__cxa_thread_atexit_impl)(fn, obj, dso_symbol);
}

// glibc's exit runs the calling thread's thread_local destructors before the atexit handlers; a
// fiber's are its own (above).
GONET_HOOK void exit(int status) {
  if (FiberTask* t = FiberScheduler::Current()) t->RunThreadLocalDestructors();
  NEXT(exit)(status);
  __builtin_unreachable();
}

// --- thread-specific data: per fiber ---------------------------------------------------------
// The kind of a key (key_kind.h: the program's, or a sanitizer's, whose destructor gonet must not
// run at fiber exit) is decided here from the creator's return address: ASan creates its key
// while it starts up, before gonet's constructor, so the rule cannot wait for the runtime.

GONET_HOOK int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  int r = NEXT(pthread_key_create)(key, destructor);
  if (r == 0) {
    FiberScheduler::NoteKeyDestructor(*key, destructor,
                                      core::KeyKindOfCreator(__builtin_return_address(0)));
  }
  return r;
}

GONET_HOOK int pthread_key_delete(pthread_key_t key) {
  FiberScheduler::NoteKeyDestructor(key, nullptr);
  return NEXT(pthread_key_delete)(key);
}

GONET_HOOK void* pthread_getspecific(pthread_key_t key) {
  if (FiberTask* t = FiberScheduler::Current()) return t->GetSpecific(key);
  return NEXT(pthread_getspecific)(key);
}

GONET_HOOK int pthread_setspecific(pthread_key_t key, const void* value) {
  if (FiberTask* t = FiberScheduler::Current()) return t->SetSpecific(key, value);
  return NEXT(pthread_setspecific)(key, value);
}

// --- mutexes -------------------------------------------------------------------------------

GONET_HOOK int pthread_mutex_lock(pthread_mutex_t* m) {
  if (Fibers() && core::MutexSupported(m)) return core::MutexLock(m, 0);
  return NEXT(pthread_mutex_lock)(m);
}

GONET_HOOK int pthread_mutex_trylock(pthread_mutex_t* m) {
  if (Fibers() && core::MutexSupported(m)) return core::MutexTryLock(m);
  return NEXT(pthread_mutex_trylock)(m);
}

GONET_HOOK int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) {
  if (Fibers() && core::MutexSupported(m)) {
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::MutexLock(m, core::MonotonicDeadline(CLOCK_REALTIME, *abstime));
  }
  return NEXT(pthread_mutex_timedlock)(m, abstime);
}

GONET_HOOK int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock,
                                       const timespec* abstime) {
  if (Fibers() && core::MutexSupported(m)) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::MutexLock(m, core::MonotonicDeadline(clock, *abstime));
  }
  return NEXT(pthread_mutex_clocklock)(m, clock, abstime);
}

GONET_HOOK int pthread_mutex_unlock(pthread_mutex_t* m) {
  if (Fibers() && core::MutexSupported(m)) return core::MutexUnlock(m);
  return NEXT(pthread_mutex_unlock)(m);
}

// glibc still exports its internal names for old binaries; they must not reach glibc's unlock,
// whose wake cannot find a fiber (futex_table.h, rule 5).
GONET_HOOK int __pthread_mutex_lock(pthread_mutex_t* m) { return pthread_mutex_lock(m); }
GONET_HOOK int __pthread_mutex_trylock(pthread_mutex_t* m) { return pthread_mutex_trylock(m); }
GONET_HOOK int __pthread_mutex_unlock(pthread_mutex_t* m) { return pthread_mutex_unlock(m); }

// --- condition variables -------------------------------------------------------------------
// One condvar, one protocol (fiber_sync.h): a process-private condvar is gonet's for every wait
// and wake, whatever the mutex (one gonet leaves to glibc is released and re-taken with glibc's
// own calls); a process-shared one is glibc's for every wait and wake.

namespace {

bool FiberCond(const pthread_cond_t* c) { return Fibers() && core::CondSupported(c); }

core::GlibcMutexOps GlibcMutex() {
  return core::GlibcMutexOps{NEXT(pthread_mutex_lock), NEXT(pthread_mutex_unlock)};
}

}  // namespace

GONET_HOOK int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  if (!FiberCond(c)) return NEXT(pthread_cond_wait)(c, m);
  core::GlibcMutexOps glibc = GlibcMutex();
  return core::CondWait(c, m, CLOCK_REALTIME, nullptr, &glibc);
}

GONET_HOOK int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                      const timespec* abstime) {
  if (!FiberCond(c)) return NEXT(pthread_cond_timedwait)(c, m, abstime);
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  core::GlibcMutexOps glibc = GlibcMutex();
  return core::CondWait(c, m, core::CondClock(c), abstime, &glibc);
}

GONET_HOOK int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                      const timespec* abstime) {
  if (!FiberCond(c)) return NEXT(pthread_cond_clockwait)(c, m, clock, abstime);
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  core::GlibcMutexOps glibc = GlibcMutex();
  return core::CondWait(c, m, clock, abstime, &glibc);
}

GONET_HOOK int pthread_cond_signal(pthread_cond_t* c) {
  if (FiberCond(c)) return core::CondSignal(c);
  return NEXT(pthread_cond_signal)(c);
}

GONET_HOOK int pthread_cond_broadcast(pthread_cond_t* c) {
  if (FiberCond(c)) return core::CondBroadcast(c);
  return NEXT(pthread_cond_broadcast)(c);
}

// --- reader-writer locks and spin locks ---------------------------------------------------

GONET_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
  if (Fibers() && core::RwLockSupported(l)) return core::RwLockRead(l, 0);
  return NEXT(pthread_rwlock_rdlock)(l);
}

GONET_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
  if (Fibers() && core::RwLockSupported(l)) return core::RwLockWrite(l, 0);
  return NEXT(pthread_rwlock_wrlock)(l);
}

GONET_HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  if (Fibers() && core::RwLockSupported(l)) return core::RwTryRead(l);
  return NEXT(pthread_rwlock_tryrdlock)(l);
}

GONET_HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  if (Fibers() && core::RwLockSupported(l)) return core::RwTryWrite(l);
  return NEXT(pthread_rwlock_trywrlock)(l);
}

GONET_HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* abstime) {
  if (Fibers() && core::RwLockSupported(l)) {
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::RwLockRead(l, core::MonotonicDeadline(CLOCK_REALTIME, *abstime));
  }
  return NEXT(pthread_rwlock_timedrdlock)(l, abstime);
}

GONET_HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* abstime) {
  if (Fibers() && core::RwLockSupported(l)) {
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::RwLockWrite(l, core::MonotonicDeadline(CLOCK_REALTIME, *abstime));
  }
  return NEXT(pthread_rwlock_timedwrlock)(l, abstime);
}

GONET_HOOK int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock,
                                          const timespec* abstime) {
  if (Fibers() && core::RwLockSupported(l)) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::RwLockRead(l, core::MonotonicDeadline(clock, *abstime));
  }
  return NEXT(pthread_rwlock_clockrdlock)(l, clock, abstime);
}

GONET_HOOK int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock,
                                          const timespec* abstime) {
  if (Fibers() && core::RwLockSupported(l)) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
    return core::RwLockWrite(l, core::MonotonicDeadline(clock, *abstime));
  }
  return NEXT(pthread_rwlock_clockwrlock)(l, clock, abstime);
}

GONET_HOOK int pthread_rwlock_unlock(pthread_rwlock_t* l) {
  if (Fibers() && core::RwLockSupported(l)) return core::RwUnlock(l);
  return NEXT(pthread_rwlock_unlock)(l);
}

GONET_HOOK int __pthread_rwlock_rdlock(pthread_rwlock_t* l) { return pthread_rwlock_rdlock(l); }
GONET_HOOK int __pthread_rwlock_wrlock(pthread_rwlock_t* l) { return pthread_rwlock_wrlock(l); }
GONET_HOOK int __pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  return pthread_rwlock_tryrdlock(l);
}
GONET_HOOK int __pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  return pthread_rwlock_trywrlock(l);
}
GONET_HOOK int __pthread_rwlock_unlock(pthread_rwlock_t* l) { return pthread_rwlock_unlock(l); }

// A spin lock held by a fiber that parked can only be released once that fiber runs again,
// perhaps on this very worker: a fiber spinning for it yields now and then instead of spinning
// its worker forever.
GONET_HOOK int pthread_spin_lock(pthread_spinlock_t* l) {
  FiberTask* t = FiberScheduler::Current();
  if (t == nullptr) return NEXT(pthread_spin_lock)(l);
  for (int spins = 1;; ++spins) {
    if (NEXT(pthread_spin_trylock)(l) == 0) return 0;
    if (spins % 64 == 0) t->Yield();
  }
}

// --- semaphores (unnamed, process-private) --------------------------------------------------
// A fiber waits in core (it parks on the value word); an OS thread waits in glibc's own code,
// which sleeps in the kernel on that word, where sem_post's wake reaches it (fiber_sync.h). The
// checks come in glibc's order: clock, then nanoseconds, then the fast path.

namespace {

bool FiberSem(const sem_t* s) { return Fibers() && core::SemSupported(s); }

// The slow path of a timed wait: -1 with errno as glibc sets it.
int SemTimedWait(sem_t* s, clockid_t clock, const timespec* abstime) {
  if (core::SemTryWait(s) == 0) return 0;
  if (int e = core::SemWait(s, core::MonotonicDeadline(clock, *abstime)); e != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

}  // namespace

GONET_HOOK int sem_wait(sem_t* s) {
  if (!FiberSem(s) || FiberScheduler::Current() == nullptr) return NEXT(sem_wait)(s);
  if (int e = core::SemWait(s, 0); e != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

GONET_HOOK int sem_timedwait(sem_t* s, const timespec* abstime) {
  if (!FiberSem(s) || FiberScheduler::Current() == nullptr) return NEXT(sem_timedwait)(s, abstime);
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) {
    errno = EINVAL;
    return -1;
  }
  return SemTimedWait(s, CLOCK_REALTIME, abstime);
}

// Python 3.11 makes every timed lock wait with it (threading.Event.wait(timeout), queue.get,
// Lock.acquire(timeout)): issue 13's lost wake-up was its wait sleeping in glibc, out of reach.
GONET_HOOK int sem_clockwait(sem_t* s, clockid_t clock, const timespec* abstime) {
  if (!FiberSem(s) || FiberScheduler::Current() == nullptr) {
    return NEXT(sem_clockwait)(s, clock, abstime);
  }
  if ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || abstime->tv_nsec < 0 ||
      abstime->tv_nsec >= 1000000000) {
    errno = EINVAL;
    return -1;
  }
  return SemTimedWait(s, clock, abstime);
}

GONET_HOOK int sem_trywait(sem_t* s) {
  if (!FiberSem(s)) return NEXT(sem_trywait)(s);
  if (core::SemTryWait(s) != 0) {
    errno = EAGAIN;
    return -1;
  }
  return 0;
}

// Every thread's post is gonet's: glibc's would wake only the kernel's sleepers, never a fiber.
GONET_HOOK int sem_post(sem_t* s) {
  if (!FiberSem(s)) return NEXT(sem_post)(s);
  if (int e = core::SemPost(s); e != 0) {
    errno = e;
    return -1;
  }
  return 0;
}

// --- sleeps: park the fiber; an OS thread sleeps in the kernel as usual ----------------------

GONET_HOOK int nanosleep(const timespec* req, timespec* rem) {
  if (FiberScheduler::Current() == nullptr || req == nullptr) return NEXT(nanosleep)(req, rem);
  if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) {
    errno = EINVAL;
    return -1;
  }
  int64_t deadline = RelativeDeadline(req);
  if (core::FiberSleepUntil(deadline)) return Interrupted(deadline, rem);
  return 0;
}

GONET_HOOK int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (FiberScheduler::Current() == nullptr || req == nullptr ||
      (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) {
    return NEXT(clock_nanosleep)(clock, flags, req, rem);
  }
  if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000) return EINVAL;
  int64_t deadline =
      (flags & TIMER_ABSTIME) ? core::MonotonicDeadline(clock, *req) : RelativeDeadline(req);
  if (core::FiberSleepUntil(deadline)) {
    Interrupted(deadline, (flags & TIMER_ABSTIME) ? nullptr : rem);
    return EINTR;
  }
  return 0;
}

GONET_HOOK int usleep(useconds_t usec) {
  if (FiberScheduler::Current() == nullptr) return NEXT(usleep)(usec);
  if (core::FiberSleepUntil(core::DeadlineAfter(static_cast<int64_t>(usec) * 1000))) {
    errno = EINTR;
    return -1;
  }
  return 0;
}

GONET_HOOK unsigned int sleep(unsigned int seconds) {
  if (FiberScheduler::Current() == nullptr) return NEXT(sleep)(seconds);
  int64_t deadline = core::DeadlineAfter(static_cast<int64_t>(seconds) * 1000000000);
  if (core::FiberSleepUntil(deadline)) {
    int64_t left = deadline - core::Nanotime();
    return left > 0 ? static_cast<unsigned int>((left + 999999999) / 1000000000) : 0;
  }
  return 0;
}
