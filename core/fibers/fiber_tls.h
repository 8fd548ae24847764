// Fiber TLS: every fiber has its own copy of the program's __thread/thread_local variables, as a
// thread has (issue 14).
//
// The mechanism, chosen by measurement (2 cores, Debian 12, glibc 2.36, x86_64; /tmp micro-
// benchmark, then the fibers echo benchmark: README "Thread-local storage in fibers mode"):
//   copy the bytes on every switch (save the outgoing fiber's, load the incoming one's):
//       64 B: 9 ns, 256 B: 18 ns, 1 KiB: 41 ns per save+load
//   a thread pointer per fiber instead (each fiber its own TCB + static TLS, %fs switched):
//       wrfsbase 11 ns where the kernel enables FSGSBASE, arch_prctl(ARCH_SET_FS) 162 ns where
//       not, plus a private copy of glibc's struct pthread per fiber (its tid, its locks, its
//       errno and malloc tcache would then be per fiber too, which glibc does not survive)
// Programs declare tens to a few hundred bytes (mariadbd 104, libsystemd 164, apache2 8), so the
// copy costs about what one wrfsbase does and needs nothing from glibc's private layout: copying
// it is.
//
// What is copied. At start-up (fibers mode) dl_iterate_phdr names every loaded object with a
// PT_TLS segment and, for the calling thread, the address of its block in static TLS; the block's
// offset from the thread pointer is the same in every thread (x86_64 TLS variant II: blocks at
// negative offsets, the main program's nearest the TCB). Objects whose TLS must stay per OS
// thread are left out: gonet's own (run queues, the current fiber), and the runtimes tls_scan.h
// lists (glibc's errno, which fiber.cc swaps by itself, and its malloc tcache, which must never
// follow a fiber to another thread; libstdc++'s exception state, swapped by fiber.cc; unwinder
// and allocator caches). The other blocks are merged into spans (neighbours separated only by
// alignment padding become one copy), typically a single span: the main program and its own
// libraries. A new fiber's copy starts from the objects' initialisation images (.tdata copied,
// .tbss zeroed), as a new thread's does.
//
// When. On every switch, on the fiber's own stack: Save (the worker's bytes into the outgoing
// fiber's area) before it suspends, Load (its area into the bytes of whichever OS thread resumes
// it) after. So a fiber keeps its values across every park and across a handoff to another OS
// thread (fiber_scheduler.h). Not their addresses: after a handoff the fiber's copy lives at the
// new thread's address, and a pointer taken before (in a register, in memory, a self-pointer
// inside a thread-local such as a short std::string's) names the old thread's bytes. Only a thread
// pointer per fiber could carry them; handoffs are kept rare instead (machine_state.h), and
// thread_local destructors are found by block and offset (fiber_thread_exit.cc). A program with no
// such TLS pays one load and a branch per switch.
//
// Objects dlopen'ed later (fibers mode's dlopen hook, shim/dl.cc) are followed when gonet can
// make the call itself and load the same file: a path (a name with '/', without '$': the
// loader's answer does not depend on who calls it), or a name whose search gonet can reproduce
// for its caller (dlopen_search.h: a bare name from a caller with gonet's own search path or
// from the program with a RUNPATH of its own, the program's own $ORIGIN). A new object with TLS
// gets a block of its own, reached through __tls_get_addr (its address differs per thread, and
// is allocated on first use), so existing fibers see its initial image and the loading fiber
// keeps what its constructors stored. Such an object is never unloaded (RTLD_NODELETE: gonet
// copies its TLS on every switch), as glibc already keeps an object that has live thread_local
// destructors. An object loaded any other way (a library's own RPATH, RUNPATH or $ORIGIN: only
// glibc called with that library's return address can search for it, so gonet's hook jumps to
// glibc's dlopen and never sees the call return) keeps one copy of its TLS per worker and is
// named on stderr, once: before that dlopen when gonet can tell which file glibc will open (a
// library's $ORIGIN, a file in a directory of the library's own path), else at the next
// pthread_create (so are the new objects' own dependencies).
//
// Thread rules: Init once, before any fiber runs. Save/Load only on the fiber they are given, on
// its stack. FollowDlopen and NoticeUnfollowedLoads from any thread; the block table is
// append-only and published with release/acquire on its count, so a switch never takes a lock.
//
// LOCKING (core/README.md, locks 5 and 6): g_scan_mu lets one scan of newly loaded objects run at a
// time, and is held across dl_iterate_phdr and the pinning dlopen; g_table_mu, taken under it or
// by Init, guards the appends to the tables.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gonet::core {

// One fiber's private bytes: every block of the table, at the block's area_offset.
struct FiberTlsArea {
  unsigned char* bytes = nullptr;  // malloc'ed; kept while the task slot is recycled
  size_t cap = 0;
  uint32_t blocks = 0;  // how many blocks of the table `bytes` holds
};

namespace fiber_tls {

// Fibers mode, at runtime start, before the first fiber. Returns how many bytes a switch copies.
size_t Init();
// True once Init found something to copy: a switch with nothing to copy returns at once.
bool Active();

// Makes a's bytes a new thread's (the initialisation images). false if out of memory.
bool Prepare(FiberTlsArea* a);
// The switch: thread -> a (Save, before a's fiber suspends), a -> thread (Load, after it
// resumed, on whichever thread resumed it).
void Save(FiberTlsArea* a);
void Load(FiberTlsArea* a);

// True if the object containing addr has its TLS per fiber (a C++ thread_local's destructor
// registered from it then belongs to the registering fiber: shim/threads.cc).
bool PerFiber(const void* addr);

// An address in a per-fiber TLS block (false: not in one), as the block and the offset in it, and
// back on whichever thread runs the fiber now: a thread_local destructor registered on one OS
// thread runs on the object where the fiber's copy lives at its exit, after a handoff too. A
// static block is at the same offset from every thread's pointer; a dlopen'ed object's block
// (module != 0) is wherever __tls_get_addr says on the calling thread.
struct TlsPlace {
  uint32_t block;  // index in the block table (append-only: stays valid)
  size_t offset;   // from the block's start
};
bool FindTlsPlace(const void* addr, TlsPlace* place);
void* AtTlsPlace(TlsPlace place);

// A dlopen gonet made for the program (a path, or a name it searched as the program's caller
// would) returned a handle: adopt the new objects with TLS (pin, add blocks).
void FollowDlopen();
// libc's dlopen, registered by the shim at load (shim/real.h): pinning an adopted object
// (RTLD_NOLOAD | RTLD_NODELETE) must not go through gonet's own dlopen entry. Until it is set,
// objects cannot be pinned and stay shared (named on stderr).
using DlopenFn = void* (*)(const char* file, int flags);
void SetRealDlopen(DlopenFn dlopen);
// Before gonet's dlopen entry leaves a dlopen to glibc, with the file glibc's search will open
// when it can be told (dlopen_search.h, PredictCallersOwn): if that file declares application
// TLS and is not loaded yet, name it on stderr now, once; the scan that later finds it loaded
// does not name it again. Does nothing before Init.
void NameBeforeDlopen(const char* path);
// At pthread_create: look for objects loaded without being followed (a dlopen gonet left to
// glibc, dlopen_search.h) and name them on stderr, once each.
// Cheap when nothing was loaded (one dl_iterate_phdr callback). Does nothing before Init.
void NoticeUnfollowedLoads();

// In a fork child, before anything else runs (runtime's AtForkChild): the scan and table locks
// may have been held by a thread that does not exist in the child.
void AfterForkChild();

// Bytes one switch copies (all blocks), for gonet's tests and its start-up line.
size_t SwitchBytes();

// For the unit tests: merges blocks (sorted by offset) into spans. Block i is [offset, offset +
// bytes) relative to the thread pointer; keep[i] false: must not be copied. Writes spans as
// (offset, bytes) pairs and returns their count (at most n).
struct Range {
  intptr_t offset;
  size_t bytes;
  size_t align;
  bool keep;
};
size_t MergeSpans(const Range* blocks, size_t n, Range* spans);

}  // namespace fiber_tls
}  // namespace gonet::core
