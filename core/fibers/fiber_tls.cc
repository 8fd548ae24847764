#include "core/fibers/fiber_tls.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/fibers/tls_scan.h"

// The loader's entry for dynamic TLS (the x86_64 and aarch64 psABIs: a module id and an offset).
struct GonetTlsIndex {
  unsigned long module;
  unsigned long offset;
};
extern "C" void* __tls_get_addr(GonetTlsIndex* index);

namespace gonet::core::fiber_tls {
namespace {

std::atomic<DlopenFn> g_real_dlopen{nullptr};  // libc's (SetRealDlopen)

constexpr uint32_t kMaxBlocks = 64;    // spans at start-up plus dlopen'ed objects
constexpr uint32_t kMaxObjects = 128;  // objects with PT_TLS that PerFiber knows about

// One copy per switch: a span of static TLS (module == 0, at tp + tp_offset in every thread) or
// one dlopen'ed object's block (module != 0: its address differs per thread, __tls_get_addr).
struct Block {
  intptr_t tp_offset = 0;
  unsigned long module = 0;
  size_t bytes = 0;
  size_t area_offset = 0;                // where a fiber's area keeps it
  const unsigned char* image = nullptr;  // a new thread's first image_bytes; the rest are zero
  size_t image_bytes = 0;
};

// An object with PT_TLS, for PerFiber and for telling new objects from known ones.
struct Object {
  uintptr_t lo = 0, hi = 0;  // its PT_LOAD segments' span
  size_t module = 0;         // its TLS module id
  bool per_fiber = false;
};

// The table: written under g_table_mu, append-only; readers load the count (acquire) and read
// only entries below it, which never change once published.
Spinlock g_table_mu;
Spinlock g_scan_mu;  // one scan of new loads at a time (ScanLoads: its seen[] is shared)
Block g_blocks[kMaxBlocks];
std::atomic<uint32_t> g_nblocks{0};
Object g_objects[kMaxObjects];
std::atomic<uint32_t> g_nobjects{0};
unsigned long long g_adds_seen GONET_GUARDED_BY(g_table_mu) = 0;  // dlpi_adds at the last scan
bool g_initialised = false;
bool g_shared = false;  // GONET_FIBER_TLS=shared: the operator keeps one copy per worker
// Files named before glibc's dlopen loaded them (NameBeforeDlopen): the scan that finds them
// does not name them again. Append-only, under g_table_mu.
constexpr size_t kMaxNamedEarly = 16;
char g_named_early[kMaxNamedEarly][PATH_MAX] GONET_GUARDED_BY(g_table_mu);
size_t g_nnamed_early GONET_GUARDED_BY(g_table_mu) = 0;

constexpr char kAlongCallersPath[] =
    "it was dlopen'ed along its caller's own search path (a library's own RPATH, RUNPATH or "
    "$ORIGIN): fibers share one copy per worker thread";

bool NamedEarly(const char* path) GONET_REQUIRES(g_table_mu) {
  for (size_t i = 0; i < g_nnamed_early; ++i) {
    if (strcmp(g_named_early[i], path) == 0) return true;
  }
  return false;
}

// The thread pointer, read afresh: after a switch the fiber may run on another OS thread, and a
// value the compiler kept from before would name the old thread's TLS.
inline unsigned char* ThreadPointer() {
#if defined(__x86_64__)
  unsigned char* tp;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
  return tp;
#elif defined(__aarch64__)
  unsigned char* tp;
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
  return tp;
#else
  return static_cast<unsigned char*>(__builtin_thread_pointer());
#endif
}

inline unsigned char* BlockAddress(const Block& b, unsigned char* tp) {
  if (b.module == 0) return tp + b.tp_offset;
  GonetTlsIndex index{b.module, 0};
  return static_cast<unsigned char*>(__tls_get_addr(&index));
}

void WriteStderr(const char* p, size_t n) {
  while (n > 0) {
    long r = sys::Call(SYS_write, 2, p, n);
    if (r == -EINTR) continue;
    if (r <= 0) return;
    p += r;
    n -= static_cast<size_t>(r);
  }
}

void Warn(const TlsObject& object, const char* why) {
  if (TlsWarningSilenced()) return;
  char line[PATH_MAX + 512];
  WriteStderr(line, FormatTlsWarning(object, why, line, sizeof line));
}

// One loaded object with PT_TLS, as dl_iterate_phdr shows it to the calling thread.
struct Seen {
  TlsObject object;
  char path[1024];
  Object where;
  const unsigned char* data = nullptr;  // the calling thread's block (nullptr: not allocated)
  const unsigned char* image = nullptr;
  size_t filesz = 0, align = 1;
};

struct ScanState {
  Seen* seen;
  size_t cap;
  size_t n;
  uintptr_t self;
  unsigned long long adds;
  bool stop_if_unchanged;
  unsigned long long adds_known;
};

bool Known(size_t module) {
  uint32_t n = g_nobjects.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) {
    if (g_objects[i].module == module) return true;
  }
  return false;
}

int Visit(dl_phdr_info* info, size_t size, void* arg) {
  auto* s = static_cast<ScanState*>(arg);
  if (size >= offsetof(dl_phdr_info, dlpi_subs)) s->adds = info->dlpi_adds;
  if (s->stop_if_unchanged && s->adds == s->adds_known) return 1;  // nothing loaded since
  const ElfW(Phdr)* tls = nullptr;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_TLS) tls = &ph;
    if (ph.p_type == PT_LOAD) {
      lo = std::min<uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
      hi = std::max<uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
    }
  }
  if (tls == nullptr || tls->p_memsz == 0 || s->n == s->cap) return 0;
  if (Known(info->dlpi_tls_modid)) return 0;
  Seen& e = s->seen[s->n++];
  const char* name = info->dlpi_name;
  if (name == nullptr || name[0] == '\0') {
    name = program_invocation_name != nullptr ? program_invocation_name : "the program";
  }
  snprintf(e.path, sizeof e.path, "%s", name);
  e.object.path = e.path;
  e.object.tls_bytes = tls->p_memsz;
  e.object.contains_gonet = s->self >= lo && s->self < hi;
  e.where.lo = lo;
  e.where.hi = hi;
  e.where.module = info->dlpi_tls_modid;
  e.data = static_cast<const unsigned char*>(info->dlpi_tls_data);
  e.image = reinterpret_cast<const unsigned char*>(info->dlpi_addr + tls->p_vaddr);
  e.filesz = tls->p_filesz;
  e.align = tls->p_align != 0 ? tls->p_align : 1;
  return 0;
}

// Scans the loaded objects with PT_TLS that the table does not know yet. Called without the
// loader's lock held (dl_iterate_phdr takes it).
size_t ScanNew(Seen* seen, size_t cap, bool stop_if_unchanged, unsigned long long adds_known,
               unsigned long long* adds) {
  ScanState s{seen, cap, 0, reinterpret_cast<uintptr_t>(&Visit), 0, stop_if_unchanged, adds_known};
  dl_iterate_phdr(Visit, &s);
  *adds = s.adds;
  return s.n;
}

void AddObject(const Object& o) GONET_REQUIRES(g_table_mu) {
  uint32_t n = g_nobjects.load(std::memory_order_relaxed);
  if (n == kMaxObjects) return;
  g_objects[n] = o;
  g_nobjects.store(n + 1, std::memory_order_release);
}

// Appends a block; false if the table is full.
bool AddBlock(Block b) GONET_REQUIRES(g_table_mu) {
  uint32_t n = g_nblocks.load(std::memory_order_relaxed);
  if (n == kMaxBlocks) return false;
  b.area_offset = 0;
  if (n > 0) {
    const Block& last = g_blocks[n - 1];
    b.area_offset = (last.area_offset + last.bytes + 15) & ~size_t{15};
  }
  g_blocks[n] = b;
  g_nblocks.store(n + 1, std::memory_order_release);
  return true;
}

size_t AreaBytes(uint32_t n) {
  if (n == 0) return 0;
  const Block& last = g_blocks[n - 1];
  return last.area_offset + last.bytes;
}

// Makes a hold blocks [a->blocks, n), each as a new thread has it. false: out of memory.
bool Grow(FiberTlsArea* a, uint32_t n) {
  size_t need = AreaBytes(n);
  if (need > a->cap) {
    void* p = realloc(a->bytes, need);
    if (p == nullptr) return false;
    a->bytes = static_cast<unsigned char*>(p);
    a->cap = need;
  }
  for (uint32_t i = a->blocks; i < n; ++i) {
    const Block& b = g_blocks[i];
    unsigned char* dst = a->bytes + b.area_offset;
    memcpy(dst, b.image, b.image_bytes);
    memset(dst + b.image_bytes, 0, b.bytes - b.image_bytes);
  }
  a->blocks = n;
  return true;
}

}  // namespace

size_t MergeSpans(const Range* blocks, size_t n, Range* spans) {
  size_t count = 0;
  bool open = false;  // spans[count - 1] may still grow
  for (size_t i = 0; i < n; ++i) {
    const Range& b = blocks[i];
    if (!b.keep) {
      open = false;  // never copy across a block that must stay per thread
      continue;
    }
    if (open) {
      Range& s = spans[count - 1];
      intptr_t gap = b.offset - (s.offset + static_cast<intptr_t>(s.bytes));
      // glibc pads a block to its alignment and fills larger holes with later blocks: a gap
      // smaller than the alignment is padding, anything else may be someone's.
      if (gap >= 0 && static_cast<size_t>(gap) < std::max(s.align, b.align)) {
        s.bytes = static_cast<size_t>(b.offset + static_cast<intptr_t>(b.bytes) - s.offset);
        s.align = std::max(s.align, b.align);
        continue;
      }
    }
    spans[count++] = b;
    open = true;
  }
  return count;
}

size_t Init() {
  if (g_initialised) return SwitchBytes();
  g_initialised = true;
  const char* mode = getenv("GONET_FIBER_TLS");
  g_shared = mode != nullptr && strcmp(mode, "shared") == 0;
  static Seen seen[kMaxObjects];  // start-up only; static: a constructor's stack may be small
  unsigned long long adds = 0;
  size_t n = ScanNew(seen, kMaxObjects, false, 0, &adds);
  unsigned char* tp = ThreadPointer();
  static Range ranges[kMaxObjects];
  size_t nranges = 0;
  SpinGuard g(g_table_mu);
  g_adds_seen = adds;
  for (size_t i = 0; i < n; ++i) {
    Seen& e = seen[i];
    TlsOwner owner = ClassifyTlsObject(e.object);
    bool app = owner == TlsOwner::kApplication;
    if (app && g_shared) {
      Warn(e.object, "GONET_FIBER_TLS=shared: fibers share one copy per worker thread");
      app = false;
    } else if (app && e.data == nullptr) {  // not in static TLS: cannot happen at start-up
      Warn(e.object, "it is not in static TLS: fibers share one copy per worker thread");
      app = false;
    }
    e.where.per_fiber = app;
    AddObject(e.where);
    if (e.data != nullptr) {
      ranges[nranges++] = Range{e.data - tp, e.object.tls_bytes, e.align, app};
    }
  }
  std::sort(ranges, ranges + nranges,
            [](const Range& a, const Range& b) { return a.offset < b.offset; });
  static Range spans[kMaxObjects];
  size_t nspans = MergeSpans(ranges, nranges, spans);
  for (size_t k = 0; k < nspans && k < kMaxBlocks; ++k) {
    // The span's image: each object's .tdata at its place, .tbss and padding zero.
    auto* image = static_cast<unsigned char*>(calloc(1, spans[k].bytes));
    if (image == nullptr) break;
    for (size_t i = 0; i < n; ++i) {
      const Seen& e = seen[i];
      if (!e.where.per_fiber || e.data == nullptr) continue;
      intptr_t off = e.data - tp;
      if (off < spans[k].offset || off + static_cast<intptr_t>(e.object.tls_bytes) >
                                       spans[k].offset + static_cast<intptr_t>(spans[k].bytes)) {
        continue;
      }
      memcpy(image + (off - spans[k].offset), e.image, e.filesz);
    }
    Block b;
    b.tp_offset = spans[k].offset;
    b.bytes = spans[k].bytes;
    b.image = image;
    b.image_bytes = spans[k].bytes;
    AddBlock(b);
  }
  return AreaBytes(g_nblocks.load(std::memory_order_relaxed));
}

bool Active() { return g_nblocks.load(std::memory_order_relaxed) != 0; }

void AfterForkChild() {
  // The forking thread may have been the only one in a scan; its holders are gone in the child.
  new (&g_scan_mu) Spinlock();
  new (&g_table_mu) Spinlock();
}

size_t SwitchBytes() {
  uint32_t n = g_nblocks.load(std::memory_order_acquire);
  size_t total = 0;
  for (uint32_t i = 0; i < n; ++i) total += g_blocks[i].bytes;
  return total;
}

bool Prepare(FiberTlsArea* a) {
  uint32_t n = g_nblocks.load(std::memory_order_acquire);
  a->blocks = 0;
  return n == 0 || Grow(a, n);
}

void Save(FiberTlsArea* a) {
  uint32_t n = g_nblocks.load(std::memory_order_acquire);
  if (n == 0) return;
  if (a->blocks < n && !Grow(a, n)) n = a->blocks;  // out of memory: newer blocks stay shared
  unsigned char* tp = ThreadPointer();
  for (uint32_t i = 0; i < n; ++i) {
    const Block& b = g_blocks[i];
    memcpy(a->bytes + b.area_offset, BlockAddress(b, tp), b.bytes);
  }
}

void Load(FiberTlsArea* a) {
  uint32_t n = g_nblocks.load(std::memory_order_acquire);
  if (n == 0) return;
  if (a->blocks < n && !Grow(a, n)) n = a->blocks;
  unsigned char* tp = ThreadPointer();
  for (uint32_t i = 0; i < n; ++i) {
    const Block& b = g_blocks[i];
    memcpy(BlockAddress(b, tp), a->bytes + b.area_offset, b.bytes);
  }
}

bool PerFiber(const void* addr) {
  auto a = reinterpret_cast<uintptr_t>(addr);
  uint32_t n = g_nobjects.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) {
    if (a >= g_objects[i].lo && a < g_objects[i].hi) return g_objects[i].per_fiber;
  }
  return false;
}

bool FindTlsPlace(const void* addr, TlsPlace* place) {
  uint32_t n = g_nblocks.load(std::memory_order_acquire);
  auto* a = static_cast<const unsigned char*>(addr);
  unsigned char* tp = ThreadPointer();
  for (uint32_t i = 0; i < n; ++i) {
    const Block& b = g_blocks[i];
    // A dynamic block: this thread's, which holds addr if addr is in it (the caller constructed
    // its object here); __tls_get_addr allocates it otherwise, as the next Load would.
    const unsigned char* start = BlockAddress(b, tp);
    if (a >= start && a < start + b.bytes) {
      *place = TlsPlace{i, static_cast<size_t>(a - start)};
      return true;
    }
  }
  return false;
}

void* AtTlsPlace(TlsPlace place) {
  return BlockAddress(g_blocks[place.block], ThreadPointer()) + place.offset;
}

namespace {

// Adopts (follow) or names (!follow) the objects with TLS loaded since the last scan.
void ScanLoads(bool follow) {
  if (!g_initialised) return;
  static Seen seen[16];
  SpinGuard scan(g_scan_mu);
  unsigned long long known;
  {
    SpinGuard g(g_table_mu);
    known = g_adds_seen;
  }
  unsigned long long adds = 0;
  size_t n = ScanNew(seen, 16, true, known, &adds);
  if (adds == known) return;
  for (size_t i = 0; i < n; ++i) {
    Seen& e = seen[i];
    bool app = ClassifyTlsObject(e.object) == TlsOwner::kApplication;
    if (app && follow && !g_shared) {
      // Never unloaded while gonet copies its TLS on every switch (header).
      DlopenFn real_dlopen = g_real_dlopen.load(std::memory_order_acquire);
      if (real_dlopen == nullptr ||
          real_dlopen(e.path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) == nullptr) {
        app = false;
        Warn(e.object, "it could not be pinned: fibers share one copy per worker thread");
      }
    } else if (app) {
      bool named;
      {
        SpinGuard g(g_table_mu);
        named = NamedEarly(e.path);
      }
      if (g_shared) {
        Warn(e.object, "GONET_FIBER_TLS=shared: fibers share one copy per worker thread");
      } else if (!named) {
        Warn(e.object, kAlongCallersPath);
      }
      app = false;
    }
    SpinGuard g(g_table_mu);
    if (app) {
      Block b;
      b.module = e.where.module;
      b.bytes = e.object.tls_bytes;
      b.image = e.image;
      b.image_bytes = e.filesz;
      if (!AddBlock(b)) {
        app = false;
        Warn(e.object, "gonet's table is full: fibers share one copy per worker thread");
      }
    }
    e.where.per_fiber = app;
    AddObject(e.where);
  }
  SpinGuard g(g_table_mu);
  g_adds_seen = adds;
}

}  // namespace

void FollowDlopen() { ScanLoads(true); }

void SetRealDlopen(DlopenFn dlopen) { g_real_dlopen.store(dlopen, std::memory_order_release); }
void NoticeUnfollowedLoads() { ScanLoads(false); }

namespace {

// p_memsz of the file's PT_TLS program header; 0 if none or unreadable.
uint64_t FileTlsBytes(const char* path) {
  int fd = static_cast<int>(sys::Call(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return 0;
  uint64_t bytes = 0;
  ElfW(Ehdr) h;
  if (pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
      memcmp(h.e_ident, ELFMAG, SELFMAG) == 0 && h.e_phentsize == sizeof(ElfW(Phdr))) {
    for (unsigned i = 0; i < h.e_phnum && i < 256; ++i) {
      ElfW(Phdr) ph;
      off_t at = static_cast<off_t>(h.e_phoff + i * sizeof ph);
      if (pread(fd, &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph)) break;
      if (ph.p_type == PT_TLS) {
        bytes = ph.p_memsz;
        break;
      }
    }
  }
  sys::Call(SYS_close, fd);
  return bytes;
}

int IsLoaded(dl_phdr_info* info, size_t, void* path) {
  return info->dlpi_name != nullptr && strcmp(info->dlpi_name, static_cast<char*>(path)) == 0;
}

}  // namespace

void NameBeforeDlopen(const char* path) {
  if (!g_initialised || g_shared || path == nullptr || strlen(path) >= PATH_MAX) return;
  TlsObject object;
  object.path = path;
  object.tls_bytes = FileTlsBytes(path);
  if (object.tls_bytes == 0 || ClassifyTlsObject(object) != TlsOwner::kApplication) return;
  if (dl_iterate_phdr(IsLoaded, const_cast<char*>(path)) != 0) return;  // glibc will reuse it
  {
    SpinGuard g(g_table_mu);
    if (NamedEarly(path) || g_nnamed_early == kMaxNamedEarly) return;
    snprintf(g_named_early[g_nnamed_early++], PATH_MAX, "%s", path);
  }
  Warn(object, kAlongCallersPath);
}

}  // namespace gonet::core::fiber_tls
