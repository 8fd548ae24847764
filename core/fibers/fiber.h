// Fiber: the context-switch mechanism, and nothing else (STYLE.md §7: switching is kept apart
// from choosing). fiber.cc is the only file that includes Boost.Context.
//
// A Fiber is a stack (fiber_stack.h) plus a saved register context. Its life:
//   Start     prepares the context on a pooled stack; nothing runs yet.
//   Resume    (on a worker's own stack) switches into the fiber until it calls Suspend or its
//             entry function returns; returns true in the second case, after which the stack
//             is back in the pool and the Fiber may be Started again.
//   Suspend   (on the fiber's stack) switches back to the Resume that entered it.
// A fiber is resumed only by the worker that started it (fiber_scheduler.h says why fibers do
// not migrate), so "the Resume that entered it" is always on the same OS thread.
//
// Per-thread runtime state that a switch would otherwise leak from one fiber to the next on the
// same worker is swapped on every Resume/Suspend (DESIGN.md Modes): errno, and libstdc++'s
// exception globals (__cxa_get_globals: the caught-exception stack and the uncaught count), since
// a fiber may park inside a catch block while another fiber on the same worker throws. gonet's own
// re-entry depth (base/mode.h t_core_depth) is swapped too: a fiber parks inside core, and the next
// fiber on that worker must not look re-entered. The program's own __thread/thread_local bytes are
// saved before every suspend and loaded after every resume (fibers/fiber_tls.h).
#pragma once

#include <cstddef>

#include "core/fibers/fiber_stack.h"
#include "core/fibers/fiber_tls.h"

namespace gonet::core {

class Fiber {
 public:
  using Entry = void (*)(void* arg);

  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // false if no stack could be mapped.
  bool Start(size_t stack_usable_bytes, Entry entry, void* arg);
  bool Resume();
  void Suspend();

  const FiberStack& stack() const { return stack_; }
  // The suspended fiber's saved context: Boost.Context's fcontext, the stack pointer at which
  // jump_fcontext saved the callee-saved registers and the return address (the layout is
  // Boost's, per architecture). Meaningful only while the fiber is suspended and cannot be
  // resumed (FiberScheduler::ForEachSuspendedTask); gonet dump unwinds from it.
  const void* SavedContext() const;
  // An address inside the context switch's code (Boost.Context's jump_fcontext), whose object a
  // signal handler must not mistake for the program's (signal_kick.cc).
  static const void* SwitchCode();

 private:
  struct Saved {
    int err = 0;
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
    int core_depth = 0;
  };
  void SwapThreadState();
  static void Trampoline(Fiber* self);

  // Boost.Context handles (boost::context::fiber is one pointer); fiber.cc static_asserts it.
  alignas(void*) unsigned char self_[sizeof(void*)] = {};    // the fiber, while suspended
  alignas(void*) unsigned char caller_[sizeof(void*)] = {};  // the worker, while the fiber runs
  FiberStack stack_;
  Saved saved_;       // the fiber's state while suspended; the worker's while it runs
  FiberTlsArea tls_;  // the program's TLS bytes while suspended (fiber_tls.h)
  Entry entry_ = nullptr;
  void* arg_ = nullptr;
  // Sanitizer bookkeeping (fiber.cc announces every switch; unused in normal builds).
  void* san_fiber_ = nullptr;                // TSan: this fiber's context
  void* san_caller_ = nullptr;               // TSan: the worker's context
  const void* san_caller_bottom_ = nullptr;  // ASan: the worker's stack
  size_t san_caller_size_ = 0;
};

}  // namespace gonet::core
