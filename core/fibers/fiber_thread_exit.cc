// C++ thread_local destructors in fibers mode: the ones a fiber registers run at that fiber's
// exit (fiber_scheduler.h, FiberTask::AtThreadExit).
//
// A thread_local with a non-trivial destructor is constructed on its thread's first use, which
// then calls __cxa_thread_atexit (libstdc++) and so glibc's __cxa_thread_atexit_impl; glibc keeps
// the list in its own TLS, per OS thread, and runs it when the thread exits (__call_tls_dtors,
// before the pthread key destructors). A fiber's own copy of the variable (fiber_tls.h) must be
// destroyed when the fiber exits, not when its worker does (never), so fibers mode's
// __cxa_thread_atexit_impl (shim/threads.cc) hands a registration from a fiber, for an object
// whose TLS is per fiber, to the fiber. Like glibc: prepended, run newest first, a destructor
// that registers another one (a thread_local used from a destructor) gets it run too, and the
// registering object stays loaded until then (fiber_tls.h pins dlopen'ed objects it copies).
#include <cerrno>
#include <cstdlib>

#include "core/fiber_scheduler.h"

namespace gonet::core {

struct FiberTask::ThreadExitFn {
  void (*fn)(void*);
  void* obj;
  ThreadExitFn* next;
};

int FiberTask::AtThreadExit(void (*fn)(void*), void* obj) {
  // malloc, as glibc's calloc: a destructor list is rare and short.
  auto* e = static_cast<ThreadExitFn*>(malloc(sizeof(ThreadExitFn)));
  if (e == nullptr) return ENOMEM;
  *e = ThreadExitFn{fn, obj, at_exit_};
  at_exit_ = e;
  return 0;
}

void FiberTask::RunThreadLocalDestructors() {
  while (ThreadExitFn* e = at_exit_) {
    at_exit_ = e->next;
    e->fn(e->obj);
    free(e);
  }
}

}  // namespace gonet::core
