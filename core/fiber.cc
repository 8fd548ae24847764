#include "core/fiber.h"

#include <boost/context/fiber.hpp>
#include <boost/context/preallocated.hpp>
#include <boost/context/stack_context.hpp>
#include <cerrno>
#include <new>
#include <utility>

#include "core/runtime.h"

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
  stack_ = FiberStackPool::Get(stack_usable_bytes);
  if (stack_.base == nullptr) return false;
  entry_ = entry;
  arg_ = arg;
  saved_ = Saved{};
  PoolStackAllocator alloc{stack_};
  ctx::stack_context sc = alloc.allocate();
  // Boost keeps its control record at the top of the stack we give it (preallocated).
  ctx::preallocated pre(sc.sp, sc.size, sc);
  new (self_) ctx::fiber(std::allocator_arg, pre, alloc, [this](ctx::fiber&& caller) {
    new (caller_) ctx::fiber(std::move(caller));
    Trampoline(this);
    ctx::fiber back = std::move(As(caller_));
    As(caller_).~fiber();
    return back;
  });
  return true;
}

void Fiber::Trampoline(Fiber* self) {
  self->SwapThreadState();  // entering: install the fiber's (fresh) errno and exception state
  self->entry_(self->arg_);
  self->SwapThreadState();  // leaving for good: give the worker its own state back
}

bool Fiber::Resume() {
  ctx::fiber f = std::move(As(self_));
  f = std::move(f).resume();
  bool finished = !f;
  As(self_) = std::move(f);
  return finished;
}

void Fiber::Suspend() {
  SwapThreadState();
  ctx::fiber c = std::move(As(caller_));
  c = std::move(c).resume();
  As(caller_) = std::move(c);
  SwapThreadState();
}

void Fiber::SwapThreadState() {
  GonetCxaEhGlobals* g = __cxa_get_globals();
  std::swap(saved_.err, errno);
  std::swap(saved_.caught_exceptions, g->caught_exceptions);
  std::swap(saved_.uncaught_exceptions, g->uncaught_exceptions);
  std::swap(saved_.core_depth, t_core_depth);
}

}  // namespace gonet::core
