#include "core/fibers/dlopen_search.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gonet::core::dlopen_search {
namespace {

// The directories libc's dlopen searches for a bare name called from the object `map`, in order
// (glibc's RTLD_DI_SERINFO, which walks the caller's RPATH chain as the search does; it leaves out
// ld.so.cache and each directory's hardware-capability subdirectories). malloc'ed; nullptr if
// dlinfo cannot say. glibc fills the object's search-path cache without the loader's lock here,
// as for any program's dlinfo; a concurrent dlopen writing the same cache can at worst leak its
// copy.
Dl_serinfo* SearchPath(void* map) {
  Dl_serinfo size;
  if (dlinfo(map, RTLD_DI_SERINFOSIZE, &size) != 0) return nullptr;
  auto* path = static_cast<Dl_serinfo*>(malloc(size.dls_size));
  if (path == nullptr) return nullptr;
  *path = size;  // dls_size and dls_cnt tell dlinfo the buffer's layout
  if (dlinfo(map, RTLD_DI_SERINFO, path) != 0) {
    free(path);
    return nullptr;
  }
  return path;
}

bool SameDir(const Dl_serpath& x, const Dl_serpath& y) {
  return x.dls_flags == y.dls_flags && strcmp(x.dls_name, y.dls_name) == 0;
}

// If `theirs` is `ours` with one run of directories inserted, the end of that run (an index into
// theirs); 0 if the paths are the same; -1 otherwise.
int EndOfOwnRun(const Dl_serinfo* theirs, const Dl_serinfo* ours) {
  unsigned n = theirs->dls_cnt, m = ours->dls_cnt;
  if (n < m) return -1;
  unsigned head = 0;
  while (head < m && SameDir(theirs->dls_serpath[head], ours->dls_serpath[head])) ++head;
  unsigned extra = n - m;
  for (unsigned i = head; i < m; ++i) {
    if (!SameDir(theirs->dls_serpath[i + extra], ours->dls_serpath[i])) return -1;
  }
  return static_cast<int>(head + extra);
}

bool Exists(const char* dir, const char* sub) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s/%s", dir, sub) >= static_cast<int>(sizeof p)) return true;
  struct stat st;
  return stat(p, &st) == 0;
}

// glibc looks in these subdirectories of every directory before the directory itself, choosing
// by the CPU; gonet does not reproduce that choice.
bool HasCapabilitySubdirs(const char* dir) {
  static const char* const kSubdirs[] = {
    "glibc-hwcaps",
    "tls",
#if defined(__x86_64__)
    "x86_64",
    "haswell",
    "avx512_1",
#elif defined(__aarch64__)
    "aarch64",
#endif
  };
  for (const char* sub : kSubdirs) {
    if (Exists(dir, sub)) return true;
  }
  return false;
}

#if defined(__x86_64__)
constexpr int kMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr int kMachine = EM_AARCH64;
#else
constexpr int kMachine = -1;
#endif

// Whether glibc's search stops at this file (open_verify): a file it cannot open, or an ELF
// object of another class or machine, is passed over; anything else is taken (an invalid file
// then fails the dlopen, by path as by name).
bool SearchStopsAt(const char* file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ElfW(Ehdr) h;
  ssize_t got = pread(fd, &h, sizeof h, 0);
  close(fd);
  if (got != static_cast<ssize_t>(sizeof h) || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) {
    return true;
  }
  if (h.e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32)) return false;
  return h.e_machine == kMachine;
}

// The directory of an object's file, as glibc's $ORIGIN names it ("/prog" -> "/").
bool DirectoryOf(const char* file, char* dir, size_t cap) {
  if (file == nullptr || file[0] != '/' ||
      snprintf(dir, cap, "%s", file) >= static_cast<int>(cap)) {
    return false;
  }
  char* slash = strrchr(dir, '/');
  *(slash == dir ? slash + 1 : slash) = '\0';
  return true;
}

// The program's file, as glibc finds its $ORIGIN (/proc/self/exe).
bool ProgramFile(char* file, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", file, cap - 1);
  if (n <= 0) return false;
  file[n] = '\0';
  return true;
}

// Expands $ORIGIN and ${ORIGIN} in name into path, origin being the caller's directory. false
// for any other '$' (glibc's $LIB and $PLATFORM choose by CPU), or when it does not fit.
bool ExpandOrigin(const char* name, const char* origin, char* path, size_t cap) {
  size_t used = 0;
  for (const char* p = name; *p != '\0';) {
    const char* piece = p;
    size_t len = 1;
    if (*p == '$') {
      size_t token = strncmp(p, "${ORIGIN}", 9) == 0 ? 9 : strncmp(p, "$ORIGIN", 7) == 0 ? 7 : 0;
      if (token == 0 || (p[token] != '/' && p[token] != '\0')) return false;
      piece = origin;
      len = strlen(origin);
      p += token;
    } else {
      ++p;
    }
    if (used + len >= cap) return false;
    memcpy(path + used, piece, len);
    used += len;
  }
  path[used] = '\0';
  return true;
}

// The caller's link map and gonet's own, when the caller is code of an object in the base
// namespace (false otherwise: code outside any object, which glibc searches for as the program,
// or another namespace).
bool BaseNamespaceMaps(const void* caller, void** caller_map, void** own_map) {
  Dl_info info;
  *caller_map = *own_map = nullptr;
  if (dladdr1(caller, &info, caller_map, RTLD_DL_LINKMAP) == 0 || *caller_map == nullptr ||
      dladdr1(reinterpret_cast<const void*>(&BaseNamespaceMaps), &info, own_map, RTLD_DL_LINKMAP) ==
          0 ||
      *own_map == nullptr) {
    return false;
  }
  Lmid_t ns = -1;
  return dlinfo(*caller_map, RTLD_DI_LMID, &ns) == 0 && ns == LM_ID_BASE;
}

enum class Found { kFile, kNone, kUnknown };

// glibc's search for name in dirs[0, end): kFile with the file it stops at written to path,
// kNone if none of them has it, kUnknown where gonet cannot tell (capability subdirectories, a
// path too long).
Found FindInDirs(const Dl_serinfo* dirs, unsigned end, const char* name, char* path, size_t cap) {
  for (unsigned i = 0; i < end; ++i) {
    const char* dir = dirs->dls_serpath[i].dls_name;
    char file[PATH_MAX];
    if (HasCapabilitySubdirs(dir) ||
        snprintf(file, sizeof file, "%s/%s", dir, name) >= static_cast<int>(sizeof file)) {
      return Found::kUnknown;
    }
    if (SearchStopsAt(file)) {
      return snprintf(path, cap, "%s", file) < static_cast<int>(cap) ? Found::kFile
                                                                     : Found::kUnknown;
    }
  }
  return Found::kNone;
}

}  // namespace

ByName Plan(const char* name, const void* caller, char* path, size_t cap) {
  if (name == nullptr) return ByName::kCallersOwn;
  bool dst = strchr(name, '$') != nullptr;
  if (!dst && strchr(name, '/') != nullptr) return ByName::kCallersOwn;
  void* caller_map;
  void* own_map;
  if (!BaseNamespaceMaps(caller, &caller_map, &own_map)) return ByName::kCallersOwn;
  bool program = caller_map == static_cast<void*>(_r_debug.r_map);
  if (dst) {
    // A set-user-ID program expands $ORIGIN only within trusted directories: glibc's to decide.
    char exe[PATH_MAX], origin[PATH_MAX];
    return program && getauxval(AT_SECURE) == 0 && ProgramFile(exe, sizeof exe) &&
                   DirectoryOf(exe, origin, sizeof origin) && ExpandOrigin(name, origin, path, cap)
               ? ByName::kProgramOrigin
               : ByName::kCallersOwn;
  }
  Dl_serinfo* theirs = SearchPath(caller_map);
  Dl_serinfo* ours = SearchPath(own_map);
  ByName plan = ByName::kCallersOwn;
  int end = theirs != nullptr && ours != nullptr ? EndOfOwnRun(theirs, ours) : -1;
  if (end == 0) {
    plan = ByName::kAsGonet;
  } else if (end > 0 && program && cap > 0) {
    // The program: its run is its RUNPATH (a DT_RPATH of the program is gonet's path too).
    snprintf(path, cap, "%s", name);
    if (FindInDirs(theirs, static_cast<unsigned>(end), name, path, cap) != Found::kUnknown) {
      plan = ByName::kAlongProgramRunpath;
    }
  }
  free(theirs);
  free(ours);
  return plan;
}

bool PredictCallersOwn(const char* name, const void* caller, char* path, size_t cap) {
  void* caller_map;
  void* own_map;
  if (name == nullptr || cap == 0 || !BaseNamespaceMaps(caller, &caller_map, &own_map) ||
      caller_map == static_cast<void*>(_r_debug.r_map)) {
    return false;
  }
  if (strchr(name, '$') != nullptr) {
    const char* file = static_cast<const link_map*>(caller_map)->l_name;
    char origin[PATH_MAX];
    return getauxval(AT_SECURE) == 0 && DirectoryOf(file, origin, sizeof origin) &&
           ExpandOrigin(name, origin, path, cap);
  }
  if (strchr(name, '/') != nullptr) return false;
  Dl_serinfo* theirs = SearchPath(caller_map);
  Dl_serinfo* ours = SearchPath(own_map);
  bool found = false;
  if (theirs != nullptr && ours != nullptr) {
    // The directories the caller has and gonet has not: those before the tail both share (that
    // tail is LD_LIBRARY_PATH and the default directories, with ld.so.cache searched among them).
    unsigned n = theirs->dls_cnt, m = ours->dls_cnt, tail = 0;
    while (tail < n && tail < m &&
           SameDir(theirs->dls_serpath[n - 1 - tail], ours->dls_serpath[m - 1 - tail])) {
      ++tail;
    }
    found = FindInDirs(theirs, n - tail, name, path, cap) == Found::kFile;
  }
  free(theirs);
  free(ours);
  return found;
}

}  // namespace gonet::core::dlopen_search
