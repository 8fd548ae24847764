// Backtraces of the calling thread, taken inside a signal handler (gonet dump). The only user of
// libunwind: local unwinding, which libunwind documents as safe in a signal handler.
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

}  // namespace gonet::core
