// Finding a running program's live-stats segment (core/stats/stats_shm.h) from outside, for
// `gonet stats` and `gonet dump`.
//
// The segment is a memfd with no name in any file system, so there is no file to find and none
// to leave behind: a process runs under gonet exactly when /proc/PID/maps shows a shared mapping
// of "/memfd:gonet-stats (deleted)". The reader opens it through the process's fd whose link
// reads the same and whose inode is the mapped one (an fd alone could have been inherited by a
// program without gonet that cleared its close-on-exec flag): /proc/PID/fd/N.
//
// Who may look is the kernel's call, not ours: /proc/PID/maps and /proc/PID/fd pass its ptrace
// access check (PTRACE_MODE_READ) for the process's own user and for root; anybody else gets
// EACCES, reported as kDenied with the process's owner. A program that closed gonet's fd behind
// its back (a raw close syscall: the libc calls keep it, shim/close_dup.cc) still maps the
// segment: root reaches it through /proc/PID/map_files/START-END, which needs CAP_SYS_ADMIN even
// for the process's owner; everybody else gets kUnreachable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gonet::cli {

enum class LookupError {
  kNone,
  kNoProcess,    // no such process, or it has exited (a zombie)
  kNotGonet,     // the process maps no gonet segment
  kDenied,       // /proc refused: another user's process (err is the errno)
  kUnreachable,  // mapped, but no fd of the process holds it and map_files is root's only
  kOpenFailed,   // the segment was found but could not be opened (err is the errno)
};

struct SegmentLookup {
  LookupError error = LookupError::kNone;
  int err = 0;
  uid_t owner = 0;  // the process's user: the owner of /proc/PID
};

struct SegmentHandle {
  int fd = -1;         // open on the segment; the caller closes it
  uint64_t inode = 0;  // the memfd's inode, which the process maps while the segment is live
  std::string via;     // the /proc path it was opened through, for messages
};

// Opens pid's segment (read-write when writable: gonet dump writes its requests there).
SegmentLookup OpenProcessSegment(long pid, bool writable, SegmentHandle* out);

// Whether pid still maps the segment with this inode (it has not exited or exec'd).
bool MapsSegment(long pid, uint64_t inode);

// The processes under gonet that the caller may inspect (its own; every one for root), by pid.
std::vector<long> GonetProcesses();

}  // namespace gonet::cli
