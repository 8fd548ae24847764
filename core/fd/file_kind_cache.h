// The file kind cache: per fd number, whether a blocking read or write on it can wait for
// another party (a pipe, FIFO, tty, character device, a socket gonet does not manage, an
// eventfd/timerfd/signalfd) or only for the disk (a regular file, directory, block device).
// Fibers mode asks it for every read/readv/write/writev that core passes through, to decide
// whether the call must run on a helper thread (syscall_offload.h) so that it cannot stall the
// fibers that share its worker; two fibers talking through a pipe on one worker would deadlock.
// Disk waits stay inline: they end by themselves, and the scheduler's sysmon covers slow ones.
//
// Storage: one byte per fd number below kCachedFds, in an array mmap'd on first use
// (MAP_NORESERVE: only touched pages cost memory). Lock-free, relaxed loads and stores: each
// byte is a hint read on its own, and every value it can hold is safe to act on (below).
// Fds at or above kCachedFds are looked up with fstat on every call.
//
// Entries: kUnknown (0) until a call looks the number up with fstat; kDiskOnly or kMayWait then.
// gonet's close, dup, dup2, dup3 and F_DUPFD reset the number's entry (core/fd/fd_ops.cc). A number
// closed behind gonet's back (fclose, close_range, a raw syscall) and reused keeps a stale entry,
// which costs speed, never correctness:
//   - a stale kMayWait for what is now a regular file costs a poll probe, which says "ready"
//     (or, for a write longer than PIPE_BUF, a round trip to a helper thread);
//   - a stale kDiskOnly for what is now a pipe makes that call inline on the worker, as every
//     call was before offload existed: the worker blocks until the sysmon hands its queue to a
//     spare thread, the net that already guarantees progress for calls gonet cannot see (a read
//     inside libc, say). Offload only makes the common case fast and exact.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace gonet::core {

// True if a read (events = POLLIN) or write (POLLOUT) of `bytes` on fd, made blocking now, could
// wait for another party: the fd is of a kind that can wait, is in blocking mode (O_NONBLOCK
// clear), and is not ready. "Ready" is poll's answer with a zero timeout, which is exact for a
// read (a blocking read returns as soon as anything is there) and for a write of up to PIPE_BUF
// bytes; a longer write on a pipe or socket can wait after a partial copy even when poll says
// writable, so it counts as "could wait" without a probe. Errors (EBADF, POLLNVAL) say false:
// the inline call returns the kernel's error at once. So does a call of zero bytes, which a
// pipe, socket or tty answers at once. Preserves errno.
bool FileCallMayWait(int fd, short events, size_t bytes);
// readv/writev: the bytes of the iovec array; an array the kernel will reject (more than IOV_MAX
// entries, NULL) is not read and says false (the kernel's EINVAL/EFAULT comes back at once).
bool FileCallMayWait(int fd, short events, const iovec* iov, int iovcnt);

// The number no longer names what the cache says (gonet closed it or dup'd over it).
void ForgetFileKind(int fd);

}  // namespace gonet::core
