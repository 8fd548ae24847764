// pthread_once, pthread_barrier_wait and the C++ static-initialisation guards in fibers mode
// (core/fibers/init_sync.h): a thread that must wait for another's initialisation, or for the
// rest of a barrier's round, parks its fiber instead of holding its worker in the kernel. Every
// thread of the program goes through them, OS threads included, so that each wake is gonet's and
// reaches fibers (futex_table.h, rule 5). In every other mode each call goes to libc (or
// libstdc++) unchanged.
#include <dlfcn.h>
#include <pthread.h>

#include <cstdint>

#include "core/base/base.h"
#include "core/fibers/init_sync.h"
#include "core/runtime/runtime.h"
#include "shim/abi.h"
#include "shim/next.h"

namespace core = gonet::core;

namespace {

bool Fibers() { return core::mode() == core::RunMode::kFibers; }

// libstdc++'s std::call_once hands its callable to pthread_once's routine through two __thread
// variables, which fibers share per worker (README: thread-local storage). A fiber that waits in
// pthread_once lets other fibers of its worker overwrite them; if the initialiser then throws,
// the waiter runs the initialisation itself and must find its own callable there again.
struct OnceCallTls {
  void** callable = nullptr;  // std::__once_callable
  void** call = nullptr;      // std::__once_call
  void* callable_value = nullptr;
  void* call_value = nullptr;

  void Save() {
    // dlsym of a TLS symbol answers the calling thread's copy.
    callable = static_cast<void**>(dlsym(RTLD_DEFAULT, "_ZSt15__once_callable"));
    call = static_cast<void**>(dlsym(RTLD_DEFAULT, "_ZSt11__once_call"));
    if (callable != nullptr) callable_value = *callable;
    if (call != nullptr) call_value = *call;
  }
  static void Restore(void* self) {
    auto* t = static_cast<OnceCallTls*>(self);
    if (t->callable != nullptr) *t->callable = t->callable_value;
    if (t->call != nullptr) *t->call = t->call_value;
  }
};

}  // namespace

GONET_HOOK int pthread_once(pthread_once_t* once, void (*init)()) {
  if (!Fibers()) return NEXT(pthread_once)(once, init);
  if (__atomic_load_n(once, __ATOMIC_ACQUIRE) & 2) return 0;  // done: glibc's fast path
  OnceCallTls tls;
  tls.Save();
  return core::OnceRun(once, init, &OnceCallTls::Restore, &tls);
}

// glibc's exported internal name, for old binaries, and C11's call_once's target.
GONET_HOOK int __pthread_once(pthread_once_t* once, void (*init)()) {
  return pthread_once(once, init);
}

GONET_HOOK int pthread_barrier_wait(pthread_barrier_t* b) {
  if (!Fibers() || !core::BarrierSupported(b)) return NEXT(pthread_barrier_wait)(b);
  return core::BarrierWait(b);
}

// The Itanium C++ ABI's guard functions (libstdc++ defines them; gonet's come first).
extern "C" {
int __cxa_guard_acquire(uint64_t* guard);
void __cxa_guard_release(uint64_t* guard);
void __cxa_guard_abort(uint64_t* guard);
}

GONET_HOOK int __cxa_guard_acquire(uint64_t* guard) {
  if (!Fibers()) return NEXT(__cxa_guard_acquire)(guard);
  return core::GuardAcquire(guard);
}

GONET_HOOK void __cxa_guard_release(uint64_t* guard) {
  if (!Fibers()) return NEXT(__cxa_guard_release)(guard);
  core::GuardRelease(guard);
}

GONET_HOOK void __cxa_guard_abort(uint64_t* guard) {
  if (!Fibers()) return NEXT(__cxa_guard_abort)(guard);
  core::GuardAbort(guard);
}
