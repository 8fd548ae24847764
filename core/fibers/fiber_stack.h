// FiberStack: the memory a fiber runs on, and the pool that recycles it.
//
// A stack is one anonymous mapping: a PROT_NONE guard page at the low end (stacks grow down, so
// an overflow faults there instead of scribbling on a neighbour), then the usable bytes. The
// mapping is MAP_NORESERVE, so a 256 KiB stack costs only the pages the fiber really touches.
// Stacks of a given size are kept on a free list when their fiber ends and handed to the next
// fiber that asks for that size: creating a fiber is then a pointer pop, not an mmap+mprotect.
// A pooled stack keeps only its top 16 KiB resident (Put; glibc does the same for a cached thread
// stack), and a parked fiber's pages below its stack pointer go back to the kernel after a second
// or two (stack_release.cc).
//
// Sizes: the fiber's pthread_attr stack size if the program set one, else GONET_FIBER_STACK
// ("256k", "1m", bytes), else 256 KiB; rounded up to whole pages, at least PTHREAD_STACK_MIN.
//
// LOCKING: one spinlock guards the free lists; it is held for a few instructions, never across
// mmap or munmap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gonet::core {

struct FiberStack {
  void* base = nullptr;  // lowest address of the mapping (the guard page)
  size_t size = 0;       // whole mapping, guard page included
  void* top() const { return static_cast<char*>(base) + size; }  // initial stack pointer
  size_t usable() const;                                         // size minus the guard page
  bool InGuard(const void* addr) const;
};

class FiberStackPool {
 public:
  // A stack with at least `usable_bytes` usable (0: the default size). base == nullptr on failure.
  static FiberStack Get(size_t usable_bytes);
  static void Put(const FiberStack& stack);

  static size_t DefaultUsableSize();  // GONET_FIBER_STACK or 256 KiB
  static uint64_t mapped();           // mmaps done so far (tests: reuse does not map)
  static uint64_t pooled();           // stacks on the free lists now
  // fork child: the pool's lock may have been held by a thread that does not exist there.
  static void AfterForkChild();
};

}  // namespace gonet::core
