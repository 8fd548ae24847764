#include "core/fibers/tls_scan.h"

#include <elf.h>
#include <limits.h>
#include <link.h>

#include <atomic>
#include <cerrno>  // program_invocation_name
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/sys.h"

namespace gonet::core {
namespace {

// File-name stems of the runtimes whose TLS is safe per worker (tls_scan.h says why, for each).
// A stem matches a file name that continues with '.' or '-' ("libc.so.6", "libc-2.31.so",
// "ld-linux-x86-64.so.2", "libunwind-x86_64.so.8"), so "libcom_err.so.2" is not libc.
constexpr const char* kRuntimeStems[] = {
    // glibc: errno is swapped, the rest is used within one call.
    "libc",
    "libc_malloc_debug",
    "ld-linux",
    "libm",
    "libpthread",
    "libdl",
    "librt",
    // C++ runtime and unwinders.
    "libstdc++",
    "libgcc_s",
    "libunwind",
    // malloc replacements: per-thread caches.
    "libjemalloc",
    "libtcmalloc",
    "libtcmalloc_minimal",
    "libmimalloc",
    // sanitizer runtimes.
    "libasan",
    "libtsan",
    "libubsan",
    "liblsan",
    "libhwasan",
};

// A second copy of gonet (another build preloaded twice) is gonet too.
constexpr const char* kGonetStem = "libgonet";

bool HasStem(const char* file, const char* stem) {
  size_t n = strlen(stem);
  return strncmp(file, stem, n) == 0 && (file[n] == '.' || file[n] == '-');
}

const char* BaseName(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

bool SegmentsContain(const dl_phdr_info* info, uintptr_t addr) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (addr >= start && addr - start < ph.p_memsz) return true;
  }
  return false;
}

// The loader names the main program "" (and the vDSO by its soname); argv[0] is what the user
// typed, so the warning names the program the way they started it.
const char* ObjectPath(const dl_phdr_info* info) {
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') return info->dlpi_name;
  if (program_invocation_name != nullptr && program_invocation_name[0] != '\0') {
    return program_invocation_name;
  }
  return "the program";
}

struct Scan {
  TlsVisitor visit;
  void* context;
  uintptr_t self;  // an address inside gonet's own code
  int visited;
};

int VisitLoadedObject(dl_phdr_info* info, size_t, void* arg) {
  auto* scan = static_cast<Scan*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_TLS) continue;
    TlsObject object;
    object.path = ObjectPath(info);
    object.tls_bytes = ph.p_memsz;
    object.contains_gonet = SegmentsContain(info, scan->self);
    scan->visit(object, scan->context);
    ++scan->visited;
    break;  // an object has at most one PT_TLS
  }
  return 0;
}

}  // namespace

TlsOwner ClassifyTlsObject(const TlsObject& object) {
  const char* file = BaseName(object.path);
  if (object.contains_gonet || HasStem(file, kGonetStem)) return TlsOwner::kGonet;
  for (const char* stem : kRuntimeStems) {
    if (HasStem(file, stem)) return TlsOwner::kRuntime;
  }
  return TlsOwner::kApplication;
}

int ForEachTlsObject(TlsVisitor visit, void* context) {
  Scan scan{visit, context, reinterpret_cast<uintptr_t>(&VisitLoadedObject), 0};
  dl_iterate_phdr(VisitLoadedObject, &scan);
  return scan.visited;
}

size_t FormatTlsWarning(const TlsObject& object, const char* why, char* buf, size_t cap) {
  if (cap == 0) return 0;
  int n = snprintf(buf, cap,
                   "gonet: fibers mode: %s declares %llu byte%s of thread-local storage "
                   "(__thread/thread_local); %s, so its per-thread state is shared between "
                   "connections (README: \"Thread-local storage in fibers mode\"). "
                   "GONET_QUIET_TLS=1 silences this.\n",
                   object.path, static_cast<unsigned long long>(object.tls_bytes),
                   object.tls_bytes == 1 ? "" : "s", why);
  if (n < 0) {
    buf[0] = '\0';
    return 0;
  }
  size_t len = static_cast<size_t>(n);
  if (len >= cap) {  // truncated (an absurdly long path): still one whole line
    len = cap - 1;
    if (len > 0) buf[len - 1] = '\n';
  }
  return len;
}

bool TlsWarningSilenced() {
  const char* quiet = getenv("GONET_QUIET_TLS");
  return quiet != nullptr && quiet[0] != '\0' && strcmp(quiet, "0") != 0;
}

}  // namespace gonet::core
