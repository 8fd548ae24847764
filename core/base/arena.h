// TypeStableArena<T>: objects that are recycled, never freed, and addressable by a 32-bit index.
// pollDescs need it because the netpoller may name one after its fd was closed (poll_desc.h);
// socket states need it so that adopting a socket never calls malloc, which a signal handler
// cannot do safely. Chunks come straight from mmap, for the same reason.
//
// LOCKING: mu_ guards the free list and chunk creation. It is a spinlock taken for a few
// instructions (plus one mmap per kChunkSize objects); core never re-enters itself from a signal
// handler, so the thread holding it cannot be the one that waits for it.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "core/base/spinlock.h"

namespace gonet::core {

template <typename T, uint32_t kChunkSize = 1024, uint32_t kMaxChunks = 4096>
class TypeStableArena {
 public:
  // Returns a recycled or new object (default-constructed once, when its chunk is made), or
  // nullptr when memory is exhausted: callers degrade (e.g. to a plain blocking call).
  T* Alloc() {
    SpinGuard g(mu_);
    if (free_ != nullptr) {
      Node* n = free_;
      free_ = n->next;
      return &n->value;
    }
    uint32_t index = next_index_.load(std::memory_order_relaxed);
    uint32_t chunk = index / kChunkSize;
    if (chunk >= kMaxChunks) return nullptr;
    Node* block = chunks_[chunk].load(std::memory_order_acquire);
    if (block == nullptr) {
      void* mem = mmap(nullptr, sizeof(Node) * kChunkSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) return nullptr;
      block = static_cast<Node*>(mem);
      for (uint32_t i = 0; i < kChunkSize; ++i) {
        new (&block[i]) Node();
        block[i].index = chunk * kChunkSize + i;
      }
      chunks_[chunk].store(block, std::memory_order_release);
    }
    // Release: a reader that sees the new count (allocated()) also sees the chunk and the
    // object's construction.
    next_index_.store(index + 1, std::memory_order_release);
    return &block[index % kChunkSize].value;
  }

  void Free(T* value) {
    Node* n = NodeOf(value);
    SpinGuard g(mu_);
    n->next = free_;
    free_ = n;
  }

  T* Get(uint32_t index) const {
    uint32_t chunk = index / kChunkSize;
    if (chunk >= kMaxChunks) return nullptr;
    Node* block = chunks_[chunk].load(std::memory_order_acquire);
    return block == nullptr ? nullptr : &block[index % kChunkSize].value;
  }

  static uint32_t IndexOf(const T* value) { return NodeOf(const_cast<T*>(value))->index; }

  // Objects ever handed out are [0, allocated()). Lock-free: scanners (close, dump) use it.
  uint32_t allocated() const { return next_index_.load(std::memory_order_acquire); }

  // After fork the lock may have been held by a thread that does not exist in the child.
  void ResetLockAfterFork() { new (&mu_) Spinlock(); }

 private:
  struct Node {
    T value;  // first member: NodeOf relies on it
    Node* next = nullptr;
    uint32_t index = 0;
  };
  static Node* NodeOf(T* value) { return reinterpret_cast<Node*>(value); }

  Spinlock mu_;
  Node* free_ GONET_GUARDED_BY(mu_) = nullptr;
  std::atomic<uint32_t> next_index_{0};  // written under mu_, read without it
  std::atomic<Node*> chunks_[kMaxChunks] = {};
};

}  // namespace gonet::core
