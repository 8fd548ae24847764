// ppoll, pselect, epoll_pwait and epoll_pwait2 with a signal mask, on a thread that is not the
// main one, waiting on a pipe nothing is written to, with SIGUSR1 blocked in every thread: the
// call's mask is the thread's for the wait, so a SIGUSR1 the mask lets through ends it with -1
// EINTR once its handler ran on the waiting thread, whether it was sent to the thread
// (pthread_kill) or to the process (kill), and the thread's own mask is back afterwards; with a
// mask that blocks it, a SIGUSR1 sent to the thread stays pending through the wait (which times
// out and returns 0) and its handler runs once the thread unblocks it.
//
// Fibers mode runs this scenario on one worker (GONET_WORKERS=1, issue 18): each wait parks the
// fiber on the netpoller, with the fiber's mask the call's.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "transcript.h"

using namespace conf;

namespace {

std::atomic<int> g_handled{0};
thread_local int t_ran = 0;  // handlers run on this thread

void OnSignal(int) {
  ++t_ran;
  g_handled.fetch_add(1);
}

enum Call { kPpoll, kPselect, kEpollPwait, kEpollPwait2 };
const char* CallName(Call c) {
  return c == kPpoll        ? "ppoll"
         : c == kPselect    ? "pselect"
         : c == kEpollPwait ? "epoll_pwait"
                            : "epoll_pwait2";
}

// One wait on fd's readability with `mask`; timeout_ms < 0: none.
long WaitWithMask(Call c, int fd, int timeout_ms, const sigset_t* mask) {
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  const timespec* tsp = timeout_ms < 0 ? nullptr : &ts;
  switch (c) {
    case kPpoll: {
      pollfd p{fd, POLLIN, 0};
      return ppoll(&p, 1, tsp, mask);
    }
    case kPselect: {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(fd, &r);
      return pselect(fd + 1, &r, nullptr, nullptr, tsp, mask);
    }
    case kEpollPwait:
    case kEpollPwait2: {
      int ep = static_cast<int>(Must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      Must(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
      epoll_event out[1];
      long r = c == kEpollPwait ? epoll_pwait(ep, out, 1, timeout_ms, mask)
                                : epoll_pwait2(ep, out, 1, tsp, mask);
      int e = errno;
      close(ep);
      errno = e;
      return r;
    }
  }
  return -1;
}

struct Wait {
  std::atomic<bool> in{false};
  long r = 0;
  int err = 0;
  int ran = 0;
  bool blocked_after = false;
};

bool Blocked(int sig) {
  sigset_t s;
  pthread_sigmask(SIG_SETMASK, nullptr, &s);
  return sigismember(&s, sig) == 1;
}

void WaitIn(const Wait& w) {
  while (!w.in) SleepMs(1);
  SleepMs(30);  // let it block in the wait (a signal sent before stays pending: same transcript)
}

}  // namespace

int main() {
  alarm(60);  // a wait that never ends kills the run instead of hanging it
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);  // inherited by every thread made after this
  int p[2];
  Must(pipe(p), "pipe");

  for (Call c : {kPpoll, kPselect, kEpollPwait, kEpollPwait2}) {
    for (int how = 0; how < 2; ++how) {
      Say("== %s with a mask that lets SIGUSR1 through, %s", CallName(c),
          how == 0 ? "pthread_kill to the waiting thread" : "kill to the process");
      Wait w;
      std::thread t([&] {
        sigset_t m;
        pthread_sigmask(SIG_SETMASK, nullptr, &m);
        sigdelset(&m, SIGUSR1);
        int before = t_ran;
        w.in = true;
        w.r = WaitWithMask(c, p[0], -1, &m);
        w.err = errno;
        w.ran = t_ran - before;
        w.blocked_after = Blocked(SIGUSR1);
      });
      WaitIn(w);
      if (how == 0) {
        ShowRc(pthread_kill(t.native_handle(), SIGUSR1), "pthread_kill(SIGUSR1)");
      } else {
        Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
      }
      t.join();
      Say("%s -> %ld %s, handlers run on the waiting thread: %d, SIGUSR1 blocked after: %s",
          CallName(c), w.r, w.r < 0 ? ErrnoName(w.err) : "", w.ran, YesNo(w.blocked_after));
    }

    Say("== %s with a mask that blocks SIGUSR1, pthread_kill to the waiting thread", CallName(c));
    Wait w;
    std::atomic<bool> shown{false};
    std::thread t([&] {
      sigset_t m;
      pthread_sigmask(SIG_SETMASK, nullptr, &m);  // SIGUSR1 blocked
      int before = t_ran;
      w.in = true;
      w.r = WaitWithMask(c, p[0], 300, &m);
      w.err = errno;
      w.ran = t_ran - before;
      while (!shown) SleepMs(1);
      sigset_t pending;
      sigpending(&pending);
      Say("%s(300 ms) -> %ld %s, handlers run during it: %d, SIGUSR1 pending after: %s",
          CallName(c), w.r, w.r < 0 ? ErrnoName(w.err) : "", w.ran,
          YesNo(sigismember(&pending, SIGUSR1) == 1));
      before = t_ran;
      pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
      Say("handlers run on unblocking: %d", t_ran - before);
      pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
    });
    WaitIn(w);
    ShowRc(pthread_kill(t.native_handle(), SIGUSR1), "pthread_kill(SIGUSR1)");
    shown = true;
    t.join();
  }
  Say("handler runs in all: %d", g_handled.load());
  return 0;
}
