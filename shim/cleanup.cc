// C cleanup handlers (pthread_cleanup_push/pop compiled as C without -fexceptions, their _np
// defer twins, and the old _pthread_cleanup_push ABI) in fibers mode.
//
// glibc keeps a thread's cleanup buffers on its struct pthread, which a fiber shares with every
// other fiber of its worker; so on a fiber the chain is the fiber's, and its forced unwind runs it
// (core/fibers/fiber_cancel.cc). On any other thread, and in every other mode, each call is
// glibc's. A fiber stays a fiber and an OS thread an OS thread, so a push and its pop always
// reach the same side.
#include <pthread.h>

#include "core/fibers/fiber_scheduler.h"
#include "shim/abi.h"
#include "shim/next.h"

using gonet::core::FiberScheduler;
using gonet::core::FiberTask;

// pthread.h declares these only for C (and C++ without exceptions).
extern "C" {
void __pthread_register_cancel(__pthread_unwind_buf_t* buf);
void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf);
void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf);
void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf);
void __pthread_unwind_next(__pthread_unwind_buf_t* buf) __attribute__((noreturn));
void _pthread_cleanup_push(_pthread_cleanup_buffer* buf, void (*routine)(void*), void* arg);
void _pthread_cleanup_pop(_pthread_cleanup_buffer* buf, int execute);
void _pthread_cleanup_push_defer(_pthread_cleanup_buffer* buf, void (*routine)(void*), void* arg);
void _pthread_cleanup_pop_restore(_pthread_cleanup_buffer* buf, int execute);
}

GONET_HOOK void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
  if (FiberTask* t = FiberScheduler::Current()) return t->RegisterCancel(buf, false);
  NEXT(__pthread_register_cancel)(buf);
}

GONET_HOOK void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
  if (FiberTask* t = FiberScheduler::Current()) return t->UnregisterCancel(buf, false);
  NEXT(__pthread_unregister_cancel)(buf);
}

GONET_HOOK void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf) {
  if (FiberTask* t = FiberScheduler::Current()) return t->RegisterCancel(buf, true);
  NEXT(__pthread_register_cancel_defer)(buf);
}

GONET_HOOK void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf) {
  if (FiberTask* t = FiberScheduler::Current()) return t->UnregisterCancel(buf, true);
  NEXT(__pthread_unregister_cancel_restore)(buf);
}

// Called by a C handler's buffer once the handler ran: the unwind goes on to the next buffer.
GONET_HOOK void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
  if (FiberTask* t = FiberScheduler::Current()) t->UnwindNext(buf);
  NEXT(__pthread_unwind_next)(buf);
  __builtin_unreachable();
}

GONET_HOOK void _pthread_cleanup_push(_pthread_cleanup_buffer* buf, void (*routine)(void*),
                                      void* arg) {
  if (FiberTask* t = FiberScheduler::Current()) return t->CleanupPush(buf, routine, arg, false);
  NEXT(_pthread_cleanup_push)(buf, routine, arg);
}

GONET_HOOK void _pthread_cleanup_pop(_pthread_cleanup_buffer* buf, int execute) {
  if (FiberTask* t = FiberScheduler::Current()) return t->CleanupPop(buf, execute, false);
  NEXT(_pthread_cleanup_pop)(buf, execute);
}

GONET_HOOK void _pthread_cleanup_push_defer(_pthread_cleanup_buffer* buf, void (*routine)(void*),
                                            void* arg) {
  if (FiberTask* t = FiberScheduler::Current()) return t->CleanupPush(buf, routine, arg, true);
  NEXT(_pthread_cleanup_push_defer)(buf, routine, arg);
}

GONET_HOOK void _pthread_cleanup_pop_restore(_pthread_cleanup_buffer* buf, int execute) {
  if (FiberTask* t = FiberScheduler::Current()) return t->CleanupPop(buf, execute, true);
  NEXT(_pthread_cleanup_pop_restore)(buf, execute);
}
