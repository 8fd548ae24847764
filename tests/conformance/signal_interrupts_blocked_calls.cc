// A signal that interrupts a blocked recv, accept or send follows signal(7): without SA_RESTART
// the call fails with EINTR (a send that already moved bytes returns their count instead); with
// SA_RESTART the call is restarted and later returns data; with SA_RESTART but a socket timeout
// (SO_RCVTIMEO) set, it fails with EINTR anyway. Signals come from pthread_kill (to the blocked
// thread) and from setitimer (process-directed SIGALRM, single-threaded). The same for a read of a
// pipe and a waitpid, which fibers mode makes on an offload helper.
//
// Deterministic even if the signal comes "too early": the signaller repeats the signal until the
// blocked call has returned, so at least one signal lands inside the call; the data that ends the
// SA_RESTART case is sent only after a signal has been handled.
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

std::atomic<int> handled{0};
void OnSignal(int) { handled.fetch_add(1); }

void Install(int sig, bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(sig, &sa, nullptr), "sigaction");
}

enum class Op { kRecv, kAccept, kSend };

// Runs `op` on a helper thread that blocks; the main thread pesters it with SIGUSR1 until it
// returns. In the SA_RESTART-without-timeout case the main thread sends data (or connects) after
// the handler has run at least twice, which ends the restarted call.
void Interrupt(Op op, bool restart, int timeout_ms) {
  const char* name = op == Op::kRecv ? "recv" : op == Op::kAccept ? "accept" : "send 8 MiB";
  Say("== %s, %s%s", name, restart ? "SA_RESTART" : "no SA_RESTART",
      timeout_ms ? ", SO_RCVTIMEO/SO_SNDTIMEO 5 s" : "");
  Install(SIGUSR1, restart);
  uint16_t port;
  int listener = TcpListener(4, &port);
  int client = TcpConnect(port);
  int server = Must(accept(listener, nullptr, nullptr), "accept");
  int target = op == Op::kAccept ? listener : op == Op::kSend ? client : server;
  if (timeout_ms) {
    SetTimeout(target, SO_RCVTIMEO, timeout_ms);
    SetTimeout(target, SO_SNDTIMEO, timeout_ms);
  }
  if (op == Op::kSend) {
    int small = 16 * 1024;
    setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  static char big[8 << 20];
  std::atomic<bool> done{false};
  long result = 0;
  int err = 0;
  Announcer parked;
  Stopwatch sw;
  pthread_t self_of_worker;
  std::thread worker([&] {
    self_of_worker = pthread_self();
    char buf[16];
    parked.Announce();
    if (op == Op::kRecv) {
      result = recv(server, buf, sizeof buf, 0);
    } else if (op == Op::kAccept) {
      result = accept(listener, nullptr, nullptr);
      if (result >= 0) {
        close(static_cast<int>(result));
        result = 0;
      }
    } else {
      result = send(client, big, sizeof big, 0);
    }
    err = errno;
    done.store(true);
  });
  parked.WaitParked(50);
  handled.store(0);
  bool unblocked = false;
  std::thread drainer;
  while (!done.load()) {
    pthread_kill(self_of_worker, SIGUSR1);
    SleepMs(20);
    if (restart && !timeout_ms && handled.load() >= 2 && !unblocked) {
      unblocked = true;
      if (op == Op::kRecv) {
        SendStr(client, "data");
      } else if (op == Op::kAccept) {
        close(TcpConnect(port));
      } else {
        // Drain everything so a restarted send could finish.
        drainer = std::thread([server] {
          char sink[65536];
          while (recv(server, sink, sizeof sink, 0) > 0) {
          }
        });
      }
    }
  }
  worker.join();
  if (result < 0) {
    Say("%s -> -1 %s", name, ErrnoName(err));
  } else if (op == Op::kSend) {
    Say("%s -> %s", name,
        result == static_cast<long>(sizeof big) ? "all bytes"
        : result > 0                            ? "a partial count"
                                                : "0");
  } else {
    Say("%s -> %ld", name, result);
  }
  Say("handler ran: %s", YesNo(handled.load() > 0));
  if (timeout_ms) Say("returned %s", sw.Before(timeout_ms));
  shutdown(client, SHUT_RDWR);  // EOF for the drainer, if any
  if (drainer.joinable()) drainer.join();
  close(client);
  close(server);
  close(listener);
}

// A read of an empty pipe (made by an offload helper in fibers mode) and a waitpid for a child
// that has not exited: calls the kernel restarts after an SA_RESTART handler and fails with EINTR
// after any other, pestered as above; in the SA_RESTART case a byte, or the child's exit, ends
// the restarted call once the handler has run twice.
void InterruptPipeOrWait(bool wait_child, bool restart) {
  const char* name = wait_child ? "waitpid" : "read of a pipe";
  Say("== %s, %s", name, restart ? "SA_RESTART" : "no SA_RESTART");
  Install(SIGUSR1, restart);
  int fds[2];
  Must(pipe(fds), "pipe");
  pid_t child = -1;
  if (wait_child) {
    child = fork();
    if (child == 0) {
      char c;
      while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
      }
      _exit(7);  // once the parent writes (or closes) the pipe
    }
  }
  std::atomic<bool> done{false};
  long result = 0;
  int err = 0;
  int status = 0;
  Announcer parked;
  pthread_t self_of_worker;
  std::thread worker([&] {
    self_of_worker = pthread_self();
    char c;
    parked.Announce();
    result = wait_child ? waitpid(child, &status, 0) : read(fds[0], &c, 1);
    err = errno;
    done.store(true);
  });
  parked.WaitParked(50);
  handled.store(0);
  bool unblocked = false;
  while (!done.load()) {
    pthread_kill(self_of_worker, SIGUSR1);
    SleepMs(20);
    if (restart && handled.load() >= 2 && !unblocked) {
      unblocked = true;
      Must(write(fds[1], "x", 1), "write");
    }
  }
  worker.join();
  if (result < 0) {
    Say("%s -> -1 %s", name, ErrnoName(err));
  } else if (wait_child) {
    Say("%s -> the child, exit status %d", name, WEXITSTATUS(status));
  } else {
    Say("%s -> %ld", name, result);
  }
  Say("handler ran: %s", YesNo(handled.load() > 0));
  if (child > 0 && result < 0) {
    Must(write(fds[1], "x", 1), "write");
    waitpid(child, nullptr, 0);
  }
  close(fds[0]);
  close(fds[1]);
}

// Single-threaded: SIGALRM from an interval timer can only land on this thread. In the
// SA_RESTART case the restarted recv ends when the peer closes, from a child process, well after
// the first alarms fired.
void Alarm(bool restart) {
  Say("== recv interrupted by setitimer SIGALRM, %s", restart ? "SA_RESTART" : "no SA_RESTART");
  Install(SIGALRM, restart);
  Pair p = TcpPair();
  handled.store(0);
  pid_t child = -1;
  if (restart) {
    child = fork();
    if (child == 0) {
      SleepMs(250);
      close(p.client);
      _exit(0);
    }
    close(p.client);  // the child holds the last reference
  }
  itimerval it{{0, 30000}, {0, 50000}};
  Must(setitimer(ITIMER_REAL, &it, nullptr), "setitimer");
  char buf[16];
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  itimerval stop{};
  setitimer(ITIMER_REAL, &stop, nullptr);
  Say("handler ran: %s", YesNo(handled.load() > 0));
  if (child < 0) close(p.client);
  if (child > 0) waitpid(child, nullptr, 0);
  close(p.server);
}

}  // namespace

int main() {
  Interrupt(Op::kRecv, false, 0);
  Interrupt(Op::kRecv, true, 0);
  Interrupt(Op::kRecv, true, 5000);
  Interrupt(Op::kAccept, false, 0);
  Interrupt(Op::kAccept, true, 0);
  Interrupt(Op::kAccept, true, 5000);
  Interrupt(Op::kSend, false, 0);
  Interrupt(Op::kSend, true, 0);
  InterruptPipeOrWait(false, false);
  InterruptPipeOrWait(false, true);
  InterruptPipeOrWait(true, false);
  InterruptPipeOrWait(true, true);
  Alarm(false);
  Alarm(true);
  return 0;
}
