// Blocking file locks in fibers mode (file_locks.cc).
#pragma once

namespace gonet::shim {

// fcntl's F_SETLKW / F_OFD_SETLKW from a fiber: true if handled, with *result fcntl's return
// value (errno set as the kernel set it); false: not such a call, make it as usual.
bool FcntlLockWait(int fd, int cmd, unsigned long arg, bool is64, int* result);

}  // namespace gonet::shim
