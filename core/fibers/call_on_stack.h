// Runs a function on another stack and comes back: how a fiber runs a pthread_kill handler
// installed with SA_ONSTACK on its own sigaltstack (fiber_signals.cc), as the kernel runs a
// thread's handler there.
//
// The frame that switches keeps the caller's stack pointer in a callee-saved register and
// describes it in its unwind information, so the unwinder (a forced unwind of a cancelled fiber,
// a backtrace, a C++ exception the handler throws) walks from the handler back onto the fiber's
// stack. A handler that leaves with siglongjmp simply abandons the other stack, as with the
// kernel's.
#pragma once

namespace gonet::core {

// True where CallOnStack switches stacks (x86_64, aarch64); elsewhere it calls fn in place.
bool CanCallOnStack();

// Calls fn(arg) with the stack pointer at top (the highest address of the stack, aligned down to
// 16 here), then returns on the caller's stack.
void CallOnStack(void* top, void (*fn)(void*), void* arg);

}  // namespace gonet::core
