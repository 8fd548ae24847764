// A fiber's exit and cancellation unwind, and its C cleanup handlers: what glibc's nptl does for a
// thread (unwind.c, cleanup_defer.c, cleanup_compat.c), done for the fiber that runs
// (fibers/fiber_signals.h, Cancellation, says what the program sees).
//
// The unwind is a forced unwind (_Unwind_ForcedUnwind) with gonet's stop function and the task's
// own exception object, as glibc's __pthread_unwind: every frame's cleanups run (C++ destructors,
// C's __attribute__((cleanup)), catch (...) blocks, which must rethrow, and
// catch (abi::__forced_unwind&)), and a catch that swallows it ends in the object's cleanup,
// which aborts as glibc's does ("FATAL: exception not rethrown").
//
// The two cleanup chains glibc keeps per thread are kept per fiber (FiberTask::cleanup_jmp_buf_
// and cleanup_), since the worker's would be shared by every fiber it runs:
//   - C's pthread_cleanup_push (without -fexceptions) setjmps into a __pthread_unwind_buf_t on
//     its own frame and registers it; gonet uses its private words as glibc's struct
//     pthread_unwind_buf does: the previous buffer, the old-ABI chain at the time, the cancel
//     type saved by the _defer twin. The chain always ends at RunStart's own buffer.
//   - the old ABI (_pthread_cleanup_push) links _pthread_cleanup_buffers, run by the stop
//     function itself for the frames it leaves.
// The stop function is called for each frame before that frame's cleanups run. Once the frame's
// CFA is above the buffer the unwind was started for (a buffer is a local of the frame that
// registered it: deeper frames have lower CFAs) or the unwinder reached the end of the stack, it
// runs the old-ABI handlers that frame leaves and longjmps into the buffer: a C handler's
// buffer runs the handler and calls __pthread_unwind_next, which starts the unwind again at the
// previous buffer; RunStart's buffer ends the unwind, and the fiber finishes with its exit value.
// So C handlers and C++ destructors run interleaved, in stack order, as on a glibc thread.
// (glibc compares the CFA with the setjmp's mangled stack pointer; the buffer's own address
// splits the frames the same way, and needs no pointer guard.)
#include <pthread.h>
#include <setjmp.h>
#include <unistd.h>
#include <unwind.h>

#include <cstdint>
#include <cstdlib>

#include "core/fibers/fiber_scheduler.h"

namespace gonet::core {
namespace {

// The private words of a __pthread_unwind_buf_t (glibc's struct pthread_unwind_buf priv.data).
struct UnwindBufPriv {
  __pthread_unwind_buf_t* prev;      // the buffer registered before this one
  _pthread_cleanup_buffer* cleanup;  // the old-ABI chain when this one was registered
  int canceltype;                    // the _defer twin: the type before it
};
static_assert(sizeof(UnwindBufPriv) <= sizeof(__pthread_unwind_buf_t::__pad));

UnwindBufPriv* Priv(__pthread_unwind_buf_t* buf) {
  return reinterpret_cast<UnwindBufPriv*>(buf->__pad);
}

__jmp_buf_tag* JmpBuf(__pthread_unwind_buf_t* buf) {
  // glibc's layout: {__jmp_buf, int __mask_was_saved} is the head of struct __jmp_buf_tag, and
  // the mask is never saved (pthread_cleanup_push's __sigsetjmp(..., 0)).
  return reinterpret_cast<__jmp_buf_tag*>(buf->__cancel_jmp_buf);
}

// "GNUCNPTL", as libgcc spells exception classes: what glibc's threads throw. libstdc++ treats
// any forced unwind as abi::__forced_unwind whatever its class.
constexpr _Unwind_Exception_Class kExceptionClass = 0x474e55434e50544cull;

// _Unwind_DeleteException's call: a catch block ended without rethrowing the unwind.
void UnwindCleanup(_Unwind_Reason_Code, _Unwind_Exception*) {
  static const char kMsg[] = "FATAL: exception not rethrown\n";
  ssize_t n = write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  (void)n;
  abort();
}

}  // namespace

_Unwind_Reason_Code FiberTask::UnwindStop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                                          _Unwind_Exception*, _Unwind_Context* context,
                                          void* param) {
  auto* buf = static_cast<__pthread_unwind_buf_t*>(param);
  FiberTask* t = FiberScheduler::Current();
  bool end = (actions & _UA_END_OF_STACK) != 0;
  uintptr_t cfa = end ? UINTPTR_MAX : _Unwind_GetCFA(context);
  bool jump = cfa > reinterpret_cast<uintptr_t>(buf);
  // Old-ABI handlers of the frames this step leaves (all down to buf's, if we jump).
  _pthread_cleanup_buffer* stop_at = Priv(buf)->cleanup;
  for (_pthread_cleanup_buffer* cur = t->cleanup_;
       cur != stop_at && (jump || cfa > reinterpret_cast<uintptr_t>(cur));) {
    _pthread_cleanup_buffer* next = cur->__prev;
    t->cleanup_ = next;  // as glibc: a handler that exits sees the rest only
    cur->__routine(cur->__arg);
    cur = next;
  }
  if (jump) longjmp(JmpBuf(buf), 1);
  return _URC_NO_REASON;
}

// No object with a destructor may live here: the unwind's last longjmp lands in this frame.
__attribute__((noinline)) void FiberTask::RunStart(FiberTask* t) {
  __pthread_unwind_buf_t start;
  Priv(&start)->prev = nullptr;
  Priv(&start)->cleanup = nullptr;
  if (setjmp(JmpBuf(&start)) == 0) {
    t->cleanup_jmp_buf_ = &start;
    t->retval_ = t->start_(t->arg_);
  }
  // Returned, or unwound by Exit (retval_ set there). `t` was not written after the setjmp.
  t->cleanup_jmp_buf_ = nullptr;
  t->cleanup_ = nullptr;
}

void FiberTask::Exit(void* retval) {
  retval_ = retval;
  exiting_ = true;  // glibc's EXITING_BIT: no cancellation is acted on from here
  Unwind(cleanup_jmp_buf_);
}

void FiberTask::Unwind(void* buf) {
  exc_.exception_class = kExceptionClass;
  exc_.exception_cleanup = &UnwindCleanup;
  _Unwind_ForcedUnwind(&exc_, &UnwindStop, buf);
  abort();  // the stop function longjmps before the unwinder can return
}

void FiberTask::RegisterCancel(__pthread_unwind_buf_t* buf, bool defer) {
  UnwindBufPriv* p = Priv(buf);
  p->prev = cleanup_jmp_buf_;
  p->cleanup = cleanup_;
  if (defer) SetCancelType(PTHREAD_CANCEL_DEFERRED, &p->canceltype);
  cleanup_jmp_buf_ = buf;
}

void FiberTask::UnregisterCancel(__pthread_unwind_buf_t* buf, bool restore) {
  UnwindBufPriv* p = Priv(buf);
  cleanup_jmp_buf_ = p->prev;
  if (restore && p->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS) {
    SetCancelType(PTHREAD_CANCEL_ASYNCHRONOUS, nullptr);  // acts on a pending cancellation
  }
}

void FiberTask::UnwindNext(__pthread_unwind_buf_t* buf) { Unwind(Priv(buf)->prev); }

void FiberTask::CleanupPush(_pthread_cleanup_buffer* buf, void (*routine)(void*), void* arg,
                            bool defer) {
  buf->__routine = routine;
  buf->__arg = arg;
  buf->__prev = cleanup_;
  if (defer) SetCancelType(PTHREAD_CANCEL_DEFERRED, &buf->__canceltype);
  cleanup_ = buf;
}

void FiberTask::CleanupPop(_pthread_cleanup_buffer* buf, int execute, bool restore) {
  cleanup_ = buf->__prev;
  if (execute) buf->__routine(buf->__arg);
  if (restore && buf->__canceltype == PTHREAD_CANCEL_ASYNCHRONOUS) {
    SetCancelType(PTHREAD_CANCEL_ASYNCHRONOUS, nullptr);
  }
}

}  // namespace gonet::core
