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
// Unlike glibc, the object is remembered by its place in fiber_tls's block table (the block and
// the offset in it: a static block sits at a fixed offset from the thread pointer, a dlopen'ed
// object's block is found through __tls_get_addr): a fiber that changed OS thread at a handoff
// destroys its copy where it now lives, whether the thread_local is the program's, a library's
// loaded at start-up, or one dlopen'ed by path.
#include <cerrno>
#include <cstdlib>

#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_tls.h"

namespace gonet::core {

struct FiberTask::ThreadExitFn {
  void (*fn)(void*);
  void* obj;                  // unless in_tls
  fiber_tls::TlsPlace place;  // in_tls: where the object is in the fiber's TLS
  bool in_tls;                // the object is the fiber's copy of a thread_local (the usual case)
  ThreadExitFn* next;
};

int FiberTask::AtThreadExit(void (*fn)(void*), void* obj) {
  // malloc, as glibc's calloc: a destructor list is rare and short.
  auto* e = static_cast<ThreadExitFn*>(malloc(sizeof(ThreadExitFn)));
  if (e == nullptr) return ENOMEM;
  // The object is where the fiber's copy lives on the OS thread running it: after a handoff
  // that is another thread than the one that constructed it, at the same offset.
  fiber_tls::TlsPlace place{};
  bool in_tls = fiber_tls::FindTlsPlace(obj, &place);
  *e = ThreadExitFn{fn, obj, place, in_tls, at_exit_};
  at_exit_ = e;
  return 0;
}

void FiberTask::RunThreadLocalDestructors() {
  while (ThreadExitFn* e = at_exit_) {
    at_exit_ = e->next;
    e->fn(e->in_tls ? fiber_tls::AtTlsPlace(e->place) : e->obj);
    free(e);
  }
}

}  // namespace gonet::core
