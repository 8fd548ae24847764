#include "core/fibers/fiber.h"

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/preallocated.hpp>
#include <boost/context/stack_context.hpp>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "core/base/mode.h"
#include "core/base/sys.h"

// Sanitizers cannot see Boost.Context's stack switches by themselves: each switch is announced
// (ASan: which stack is about to run; TSan: which fiber's happens-before state applies).
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define GONET_ASAN_FIBERS 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define GONET_TSAN_FIBERS 1
#endif

// libstdc++'s per-thread exception state; the layout is fixed by the Itanium C++ ABI.
struct GonetCxaEhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};
extern "C" GonetCxaEhGlobals* __cxa_get_globals() noexcept;

namespace gonet::core {
namespace {

namespace ctx = boost::context;
static_assert(sizeof(ctx::fiber) == sizeof(void*), "Fiber stores a boost fiber in one pointer");

ctx::fiber& As(unsigned char* storage) {
  return *std::launder(reinterpret_cast<ctx::fiber*>(storage));
}

// Boost asks its stack allocator to free the stack once the fiber has ended and the switch away
// from it is complete: only then may the pool hand the stack to another fiber.
struct PoolStackAllocator {
  FiberStack stack;
  ctx::stack_context allocate() {
    ctx::stack_context sc;
    sc.sp = stack.top();
    sc.size = stack.usable();
    return sc;
  }
  void deallocate(ctx::stack_context&) noexcept { FiberStackPool::Put(stack); }
};

}  // namespace

bool Fiber::Start(size_t stack_usable_bytes, Entry entry, void* arg) {
  if (!fiber_tls::Prepare(&tls_)) return false;  // a new thread's TLS: the images
  stack_ = FiberStackPool::Get(stack_usable_bytes);
  if (stack_.base == nullptr) return false;
  entry_ = entry;
  arg_ = arg;
  saved_ = Saved{};
  PoolStackAllocator alloc{stack_};
  ctx::stack_context sc = alloc.allocate();
  // Boost keeps its control record at the top of the stack we give it (preallocated).
  ctx::preallocated pre(sc.sp, sc.size, sc);
#if GONET_TSAN_FIBERS
  san_fiber_ = __tsan_create_fiber(0);
#endif
  new (self_) ctx::fiber(std::allocator_arg, pre, alloc, [this](ctx::fiber&& caller) {
#if GONET_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(nullptr, &san_caller_bottom_, &san_caller_size_);
#endif
    new (caller_) ctx::fiber(std::move(caller));
    Trampoline(this);
    ctx::fiber back = std::move(As(caller_));
    As(caller_).~fiber();
#if GONET_ASAN_FIBERS
    __sanitizer_start_switch_fiber(nullptr, san_caller_bottom_, san_caller_size_);  // for good
#endif
#if GONET_TSAN_FIBERS
    __tsan_switch_to_fiber(san_caller_, 0);
#endif
    return back;
  });
  return true;
}

void Fiber::Trampoline(Fiber* self) {
  // Entering: the program's TLS as a new thread has it, then fresh errno and exception state
  // (TLS first: growing the area may set errno, which must not become the fiber's).
  fiber_tls::Load(&self->tls_);
  self->SwapThreadState();
  self->entry_(self->arg_);
  self->SwapThreadState();  // leaving for good: give the worker its own state back
}

bool Fiber::Resume() {
#if GONET_TSAN_FIBERS
  san_caller_ = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(san_fiber_, 0);
#endif
#if GONET_ASAN_FIBERS
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, static_cast<char*>(stack_.top()) - stack_.usable(),
                                 stack_.usable());
#endif
  ctx::fiber f = std::move(As(self_));
  f = std::move(f).resume();
#if GONET_ASAN_FIBERS
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  bool finished = !f;
  As(self_) = std::move(f);
#if GONET_TSAN_FIBERS
  if (finished) {
    __tsan_destroy_fiber(san_fiber_);
    san_fiber_ = nullptr;
  }
#endif
  return finished;
}

void Fiber::Suspend() {
  SwapThreadState();
  fiber_tls::Save(&tls_);  // after errno is put away: growing the area may set it
#if GONET_TSAN_FIBERS
  __tsan_switch_to_fiber(san_caller_, 0);
#endif
#if GONET_ASAN_FIBERS
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, san_caller_bottom_, san_caller_size_);
#endif
  ctx::fiber c = std::move(As(caller_));
  c = std::move(c).resume();
  As(caller_) = std::move(c);
#if GONET_ASAN_FIBERS
  __sanitizer_finish_switch_fiber(fake, &san_caller_bottom_, &san_caller_size_);
#endif
  fiber_tls::Load(&tls_);  // on whichever OS thread resumed us; before errno comes back
  SwapThreadState();
}

const void* Fiber::SavedContext() const {
  // boost::context::fiber is exactly its fcontext_t (a pointer, static_assert above).
  const void* fctx;
  memcpy(&fctx, self_, sizeof fctx);
  return fctx;
}

void Fiber::SwapThreadState() {
  GonetCxaEhGlobals* g = __cxa_get_globals();
  // Both swaps of a switch run in one function (Suspend): errno must be looked up again after
  // it, since the fiber may come back on another thread (sys.h FreshErrno).
  std::swap(saved_.err, sys::FreshErrno());
  std::swap(saved_.caught_exceptions, g->caught_exceptions);
  std::swap(saved_.uncaught_exceptions, g->uncaught_exceptions);
  // By value, not std::swap: UBSan (gcc 12) reports binding a reference to this initial-exec TLS
  // variable as binding to null.
  int depth = t_core_depth;
  t_core_depth = saved_.core_depth;
  saved_.core_depth = depth;
}

const void* Fiber::SwitchCode() {
  return reinterpret_cast<const void*>(&boost::context::detail::jump_fcontext);
}

}  // namespace gonet::core
