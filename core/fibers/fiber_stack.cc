#include "core/fibers/fiber_stack.h"

#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "core/base/spinlock.h"

namespace gonet::core {
namespace {

constexpr size_t kDefaultUsable = 256 * 1024;
// Free stacks kept per size class; beyond that a finished fiber's stack is unmapped, so a burst
// of fibers does not pin its peak memory forever.
constexpr int kMaxPooledPerClass = 4096;
constexpr int kClasses = 8;
// A stack going back to the pool keeps this much of its top resident and gives the rest back to
// the kernel (MADV_DONTNEED), as glibc does with a cached thread's stack (advise_stack_range keeps
// PTHREAD_STACK_MIN): the next fiber touches the top pages anyway, so they stay, and a fiber that
// once ran deep leaves no resident pages behind in a pool of up to kMaxPooledPerClass stacks.
// Below the kept part, a shallow fiber's stack has nothing resident, so the madvise is a page-table
// walk with nothing to free.
constexpr size_t kPooledResidentTop = 16 * 1024;

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// One free list per mapping size; sizes other programs use are few (default plus one or two
// pthread_attr sizes), so a handful of classes with exact sizes is enough.
struct SizeClass {
  size_t size = 0;  // whole mapping; 0 = class unused
  FiberStack* free[kMaxPooledPerClass];
  int count = 0;
};

struct Pool {
  Spinlock mu;
  SizeClass classes[kClasses] GONET_GUARDED_BY(mu);
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: fibers may still end during exit
  return *pool;
}

std::atomic<uint64_t> g_mapped{0};
std::atomic<uint64_t> g_pooled{0};

size_t ParseSize(const char* text) {
  char* end = nullptr;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text) return 0;
  switch (*end) {
    case 'k':
    case 'K':
      v <<= 10;
      break;
    case 'm':
    case 'M':
      v <<= 20;
      break;
    default:
      break;
  }
  return static_cast<size_t>(v);
}

size_t MappingSize(size_t usable) {
  size_t page = PageSize();
  if (usable == 0) usable = FiberStackPool::DefaultUsableSize();
  if (usable < static_cast<size_t>(PTHREAD_STACK_MIN)) usable = PTHREAD_STACK_MIN;
  usable = (usable + page - 1) & ~(page - 1);
  return usable + page;
}

}  // namespace

size_t FiberStack::usable() const { return size - PageSize(); }

bool FiberStack::InGuard(const void* addr) const {
  auto a = reinterpret_cast<uintptr_t>(addr);
  auto b = reinterpret_cast<uintptr_t>(base);
  return base != nullptr && a >= b && a < b + PageSize();
}

size_t FiberStackPool::DefaultUsableSize() {
  static const size_t size = [] {
    const char* env = getenv("GONET_FIBER_STACK");
    size_t v = env != nullptr ? ParseSize(env) : 0;
    return v != 0 ? v : kDefaultUsable;
  }();
  return size;
}

FiberStack FiberStackPool::Get(size_t usable_bytes) {
  size_t size = MappingSize(usable_bytes);
  Pool& p = ThePool();
  {
    SpinGuard g(p.mu);
    for (SizeClass& c : p.classes) {
      if (c.size != size || c.count == 0) continue;
      FiberStack* s = c.free[--c.count];
      g_pooled.fetch_sub(1, std::memory_order_relaxed);
      // The list stores the stack's own descriptor at its top (below the initial sp area it is
      // unused while pooled), so pooling needs no allocation.
      return *s;
    }
  }
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) return FiberStack{};
  if (mprotect(m, PageSize(), PROT_NONE) != 0) {
    munmap(m, size);
    return FiberStack{};
  }
  g_mapped.fetch_add(1, std::memory_order_relaxed);
  return FiberStack{m, size};
}

void FiberStackPool::Put(const FiberStack& stack) {
  if (stack.base == nullptr) return;
  // Whole pages only (madvise rounds a length up): with 64 KiB pages nothing of the top is lost.
  size_t release =
      (stack.usable() - std::min(stack.usable(), kPooledResidentTop)) & ~(PageSize() - 1);
  if (release != 0) madvise(static_cast<char*>(stack.base) + PageSize(), release, MADV_DONTNEED);
  // The descriptor lives in the stack's top bytes while the stack is pooled.
  auto* slot = reinterpret_cast<FiberStack*>(static_cast<char*>(stack.top()) - sizeof(FiberStack));
  *slot = stack;
  Pool& p = ThePool();
  {
    SpinGuard g(p.mu);
    SizeClass* target = nullptr;
    for (SizeClass& c : p.classes) {
      if (c.size == stack.size) {
        target = &c;
        break;
      }
      if (target == nullptr && c.size == 0) target = &c;
    }
    if (target != nullptr && target->count < kMaxPooledPerClass) {
      target->size = stack.size;
      target->free[target->count++] = slot;
      g_pooled.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  munmap(stack.base, stack.size);
}

void FiberStackPool::AfterForkChild() { new (&ThePool().mu) Spinlock(); }

uint64_t FiberStackPool::mapped() { return g_mapped.load(std::memory_order_relaxed); }
uint64_t FiberStackPool::pooled() { return g_pooled.load(std::memory_order_relaxed); }

}  // namespace gonet::core
