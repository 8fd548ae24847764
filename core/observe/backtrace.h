// Backtraces for gonet dump, taken inside the process: of the calling thread from a signal's
// ucontext, or of a suspended fiber from its saved context. The only user of libunwind: local
// unwinding, which libunwind documents as safe in a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gonet::core {

// Unwinds from the interrupted context (the handler's ucontext argument), so the first frame is
// where the thread was blocked, not the handler. For each frame writes its pc, and its symbol and
// the pc's offset from it when the module's symbol table knows it (else an empty name). Returns
// the number of frames written (at most max).
int SignalBacktrace(void* ucontext, uint64_t* pcs, uint64_t* offsets, char* names, size_t name_size,
                    int max);

// Symbol names already looked up during one fiber walk. libunwind's lookup maps and scans the
// module's ELF symbol tables on every call, which costs far more than the unwind itself, and the
// fibers of one program share most of their frames. Fixed size (no allocation in a handler); a
// lookup that does not fit is simply not cached. One walk at a time (dump.cc: the CAS on
// waits_seq); Reset before each.
struct SymbolCache {
  static constexpr int kEntries = 509;  // prime
  static constexpr size_t kNameSize = 96;
  struct Entry {
    uint64_t gen;  // == SymbolCache::gen: valid in this walk
    uint64_t pc;
    uint64_t offset;
    char name[kNameSize];
  };
  uint64_t gen;
  Entry entries[kEntries];
  void Reset() { ++gen; }
};

// Unwinds a suspended fiber from its saved context (Fiber::SavedContext: Boost.Context's
// fcontext on x86_64, see backtrace.cc), whose stack must not run meanwhile
// (FiberScheduler::ForEachSuspendedTask pins it). The first frame is the switch's caller
// (Fiber::Suspend). Same output as SignalBacktrace; names come through cache when given
// (name_size must then be at most SymbolCache::kNameSize). Returns 0 on other architectures.
int FiberBacktrace(const void* saved_context, uint64_t* pcs, uint64_t* offsets, char* names,
                   size_t name_size, int max, SymbolCache* cache);

}  // namespace gonet::core
