#include "common/stop_signal.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

namespace examples {
namespace {

// Written only by the handler; volatile sig_atomic_t is the type a handler may write.
volatile sig_atomic_t g_stop = 0;
// Set once before the handler is installed, read only by the handler.
int g_stop_fd = -1;
void (*g_also)() = nullptr;

void OnStopSignal(int) {
  const int saved_errno = errno;  // the interrupted code may be about to read errno
  g_stop = 1;
  shutdown(g_stop_fd, SHUT_RDWR);
  if (g_also != nullptr) g_also();
  errno = saved_errno;
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void StopOnSignal(int fd, void (*also)()) {
  g_stop_fd = fd;
  g_also = also;
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: see the header
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool StopRequested() { return g_stop != 0; }

ScopedStopSignalsBlocked::ScopedStopSignalsBlocked() {
  const sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, &saved_);
}

ScopedStopSignalsBlocked::~ScopedStopSignalsBlocked() {
  pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
}

}  // namespace examples
