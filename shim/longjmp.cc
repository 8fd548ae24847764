// siglongjmp and its aliases (longjmp, _longjmp, and __longjmp_chk, which fortified code calls)
// in fibers mode. A jump to a sigsetjmp that saved the signal mask restores that mask, and a
// fiber's mask is its own (core/fibers/fiber_signals.h); glibc restores it with its internal
// sigprocmask, which reaches only the worker's OS thread, so a handler that left by siglongjmp
// would leave its signal blocked in the fiber forever. The fiber's mask is set first (pending
// signals it unblocks are delivered there, as the kernel delivers them when the mask is
// restored), then glibc makes the jump and sets the same mask on the OS thread.
#include <setjmp.h>
#include <signal.h>

#include "core/fibers/fiber_scheduler.h"
#include "shim/abi.h"
#include "shim/next.h"

extern "C" void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));

namespace {

void RestoreFiberMask(const struct __jmp_buf_tag* env) {
  if (env->__mask_was_saved == 0) return;
  if (gonet::core::FiberTask* t = gonet::core::FiberScheduler::Current()) {
    t->SigMask(SIG_SETMASK, &env->__saved_mask, nullptr);
  }
}

}  // namespace

GONET_HOOK void siglongjmp(sigjmp_buf env, int val) {
  RestoreFiberMask(env);
  NEXT(siglongjmp)(env, val);
  __builtin_unreachable();  // the pointer NEXT gives has lost glibc\'s noreturn
}

GONET_HOOK void longjmp(jmp_buf env, int val) {
  RestoreFiberMask(env);
  NEXT(longjmp)(env, val);
  __builtin_unreachable();  // the pointer NEXT gives has lost glibc\'s noreturn
}

GONET_HOOK void _longjmp(jmp_buf env, int val) {
  RestoreFiberMask(env);
  NEXT(_longjmp)(env, val);
  __builtin_unreachable();  // the pointer NEXT gives has lost glibc\'s noreturn
}

GONET_HOOK void __longjmp_chk(struct __jmp_buf_tag env[1], int val) {
  RestoreFiberMask(env);
  NEXT(__longjmp_chk)(env, val);
  __builtin_unreachable();  // the pointer NEXT gives has lost glibc\'s noreturn
}
