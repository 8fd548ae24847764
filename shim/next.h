// NEXT(name): libc's own `name` (the next definition after gonet's, resolved by shim/real.cc's
// ResolveNext, which owns every dlsym(RTLD_NEXT)), typed after the declaration in its header,
// resolved once and cached. For the pthread, C11 and signal hooks, which call glibc itself when
// gonet does not take the call over.
#pragma once

#include <atomic>

#include "shim/real.h"

namespace gonet::shim {

// decltype(&::pthread_mutex_lock) carries glibc's nonnull/nothrow attributes, which a template
// argument drops; the pointer's type is what matters here (so the warning is off for every file
// that includes this one).
#pragma GCC diagnostic ignored "-Wignored-attributes"

template <typename Fn>
Fn Next(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (__builtin_expect(fn != nullptr, 1)) return fn;
  fn = reinterpret_cast<Fn>(::gonet::real::ResolveNext(name));
  if (fn != nullptr) slot.store(fn, std::memory_order_release);
  return fn;
}

// NEXT(name) is libc's `name`, typed after the declaration in its header.
#define NEXT(name)                                       \
  ([]() {                                                \
    static std::atomic<decltype(&::name)> slot{nullptr}; \
    return ::gonet::shim::Next(slot, #name);             \
  }())

}  // namespace gonet::shim
