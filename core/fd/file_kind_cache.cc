#include "core/fd/file_kind_cache.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "core/base/sys.h"

namespace gonet::core {
namespace {

enum FileKind : uint8_t { kUnknown = 0, kDiskOnly = 1, kMayWait = 2 };

// 1 MiB of bytes covers Debian's default hard RLIMIT_NOFILE (1048576).
constexpr int kCachedFds = 1 << 20;

std::atomic<uint8_t*> g_kinds{nullptr};

uint8_t* Kinds() {
  uint8_t* k = g_kinds.load(std::memory_order_acquire);
  if (k != nullptr) return k;
  long m = sys::Call(SYS_mmap, nullptr, kCachedFds, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m < 0 && m > -4096) return nullptr;  // no cache: fstat every time
  auto* fresh = reinterpret_cast<uint8_t*>(m);
  if (g_kinds.compare_exchange_strong(k, fresh, std::memory_order_acq_rel)) return fresh;
  sys::Call(SYS_munmap, fresh, kCachedFds);  // another thread installed one first
  return k;
}

FileKind Classify(int fd) {
  struct stat st;
  if (sys::Call(SYS_fstat, fd, &st) < 0) return kUnknown;
  // Anything not known to wait only for the disk may wait for a party: pipes, FIFOs, ttys and
  // other character devices, sockets, and anonymous inodes (eventfd, timerfd, signalfd,
  // inotify), whose st_mode has no type bits at all.
  return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode) ? kDiskOnly : kMayWait;
}

FileKind Lookup(int fd) {
  if (fd < 0) return kUnknown;
  uint8_t* kinds = fd < kCachedFds ? Kinds() : nullptr;
  if (kinds != nullptr) {
    auto k = static_cast<FileKind>(__atomic_load_n(&kinds[fd], __ATOMIC_RELAXED));
    if (k != kUnknown) return k;
  }
  FileKind k = Classify(fd);
  if (kinds != nullptr && k != kUnknown) __atomic_store_n(&kinds[fd], k, __ATOMIC_RELAXED);
  return k;
}

}  // namespace

bool FileCallMayWait(int fd, short events, size_t bytes) {
  // Zero bytes: pipes, sockets and ttys answer 0 at once, whatever their state.
  if (bytes == 0 || Lookup(fd) != kMayWait) return false;
  if (events != POLLOUT || bytes <= PIPE_BUF) {
    pollfd p{fd, events, 0};
    timespec zero{};
    // Ready, hung up, in error or not an fd: the inline call returns at once.
    if (sys::Call(SYS_ppoll, &p, 1, &zero, nullptr, 8) != 0) return false;
  }
  // Checked only now, when the call would wait: an fd the program made non-blocking returns
  // EAGAIN at once, and a helper thread would only add a round trip.
  long fl = sys::Call(SYS_fcntl, fd, F_GETFL, 0);
  return fl >= 0 && !(fl & O_NONBLOCK);
}

bool FileCallMayWait(int fd, short events, const iovec* iov, int iovcnt) {
  if (iovcnt < 0 || iovcnt > IOV_MAX || (iov == nullptr && iovcnt > 0)) return false;
  size_t bytes = 0;
  for (int i = 0; i < iovcnt; ++i) bytes += iov[i].iov_len;
  return FileCallMayWait(fd, events, bytes);
}

void ForgetFileKind(int fd) {
  uint8_t* kinds = g_kinds.load(std::memory_order_acquire);
  if (kinds != nullptr && fd >= 0 && fd < kCachedFds) {
    __atomic_store_n(&kinds[fd], kUnknown, __ATOMIC_RELAXED);
  }
}

}  // namespace gonet::core
