// Shared by the ops_*_test.cc files: waiting for observable state, telling whether a thread is
// blocked where a core operation waits, and running a test on both threads-mode wait paths.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "core/base/base.h"
#include "core/poll/parker.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "core/threads/thread_parker.h"
#include "tests/unit/wait_util.h"

namespace gonet::core::testing_util {

// Threads register their parker, so that Blocked can tell a futex wait on it (gonet parked the
// thread) from any other futex wait (a lock inside libc or a sanitizer's runtime).
inline std::mutex g_sleepers_mu;
inline std::map<pid_t, const void*> g_sleepers;

inline pid_t Self() {
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  const void* parker = CurrentParker();
  std::lock_guard<std::mutex> g(g_sleepers_mu);
  g_sleepers[tid] = parker;
  return tid;
}

// True while thread `tid` (registered with Self) sleeps where a blocked core operation waits:
// in a futex on its own parker (netpoller path: pollDesc or DirLock), or in the socket call
// itself (kernel-wait path).
inline bool Blocked(pid_t tid) {
  long nr;
  unsigned long arg0;
  if (!ReadThreadSyscall(tid, &nr, &arg0)) return false;  // "running"
  switch (nr) {
    case SYS_futex: {
      std::lock_guard<std::mutex> g(g_sleepers_mu);
      auto it = g_sleepers.find(tid);
      if (it == g_sleepers.end()) return false;
      const uintptr_t p = reinterpret_cast<uintptr_t>(it->second);
      return arg0 >= p && arg0 < p + sizeof(ThreadParker);
    }
    case SYS_readv:
    case SYS_writev:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
    case SYS_accept4:
    case SYS_connect:
      return true;
    default:
      return false;
  }
}

// A TCP listener on 127.0.0.1 with a kernel-chosen port, its address in *addr; -1 on failure.
// Core is not told about it: a test that wants a known socket calls NoteSocket itself.
inline int LoopbackListener(int backlog, sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof *addr) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Threads mode has two ways to wait (core/threads/kernel_wait.h): parked on the pollDesc until the
// netpoller says ready, or blocked in the kernel's own call and woken by SIGURG on close. The
// behaviour must be the same, so every test runs on both.
enum class WaitPath { kNetpoller, kKernel };
inline void PrintTo(WaitPath path, std::ostream* os) {
  *os << (path == WaitPath::kKernel ? "Kernel" : "Netpoller");
}
inline std::string PathName(const ::testing::TestParamInfo<WaitPath>& info) {
  return info.param == WaitPath::kKernel ? "Kernel" : "Netpoller";
}
inline Config ThreadsConfig(WaitPath path) {
  Config c;
  c.mode = RunMode::kThreads;
  c.threads_wait_kernel = path == WaitPath::kKernel;
  return c;
}

// The wake-up counters of each path: the pollDesc path counts wakes_* (one per park), the
// kernel-wait path its own kernel_wakes_* (a call made in the kernel is not a park).
inline int64_t ClosesCounted(WaitPath path) {
  return path == WaitPath::kKernel ? Stats().kernel_wakes_close.load() : Stats().wakes_close.load();
}
inline int64_t SignalsCounted(WaitPath path) {
  return path == WaitPath::kKernel ? Stats().kernel_wakes_signal.load()
                                   : Stats().wakes_signal.load();
}

}  // namespace gonet::core::testing_util
