// A thread blocked in a call that is not a socket operation (a pipe read or write, poll, ppoll,
// select, pselect, epoll_wait, waitpid, waitid) must not stop the program's other threads. In
// fibers mode with one worker (the runner sets GONET_WORKERS=1 for this scenario, issue #5),
// every thread is a fiber on the same OS thread: before syscall offload, the blocked fiber held
// the worker, so two threads talking through a pipe deadlocked, and a waiter with a 10 s timeout
// timed out because the thread that was to wake it could not run. Natively, and in every mode,
// each stage below completes with the same results.
//
// Every wait is bounded (alarm): a regression ends the run with SIGALRM instead of hanging.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>

#include <atomic>
#include <functional>
#include <thread>

#include "parked.h"
#include "transcript.h"

using namespace conf;

namespace {

constexpr int kLongTimeoutMs = 10000;  // the waiter's own timeout: it must be woken long before

struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    Must(pipe(fds), "pipe");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close(r);
    close(w);
  }
};

void WriteByte(int fd, char c) {
  if (write(fd, &c, 1) != 1) Fail("write");
}

char ReadByte(int fd) {
  char c = 0;
  if (read(fd, &c, 1) != 1) Fail("read");
  return c;
}

// Two new threads (never the main thread, which is no fiber in fibers mode) bounce a byte
// through two pipes: each read blocks until the other thread runs.
uint32_t PingPong(int rounds) {
  Pipe there, back;
  std::thread echo([&] {
    for (int i = 0; i < rounds; ++i) WriteByte(back.w, static_cast<char>(ReadByte(there.r) + 1));
  });
  uint32_t sum = 2166136261u;
  std::thread serve([&] {
    for (int i = 0; i < rounds; ++i) {
      WriteByte(there.w, static_cast<char>(i));
      char c = ReadByte(back.r);
      sum = Checksum(&c, 1, sum);
    }
  });
  serve.join();
  echo.join();
  return sum;
}

// One thread waits (wait_fn, on a pipe's read end, with a 10 s timeout); another thread, once the
// waiter has announced itself, does some work that needs a third thread (a ping-pong) and only
// then writes the byte the waiter waits for. Prints what the waiter's call returned.
void WaiterWokenAfterOtherWork(const char* name, const std::function<int(int fd)>& wait_fn) {
  Say("== %s with a %d ms timeout, woken by a thread that first works with another", name,
      kLongTimeoutMs);
  Pipe p;
  Announcer waiting;
  std::thread waiter([&] {
    waiting.Announce();
    Stopwatch sw;
    int r = wait_fn(p.r);
    int err = errno;
    Say("%s -> %d%s%s, %s", name, r, r < 0 ? " " : "", r < 0 ? ErrnoName(err) : "",
        sw.Before(kLongTimeoutMs));
    Show(ReadByte(p.r), "read the byte that woke it");
  });
  std::thread waker([&] {
    waiting.WaitParked();
    Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
    WriteByte(p.w, 'x');
  });
  waker.join();
  waiter.join();
}

// A child that exits with `status` once a byte arrives on its pipe; forked before the stage's
// threads exist, so the child is single-threaded whatever the mode.
pid_t ChildExitingOnByte(Pipe& p, int status) {
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    char c;
    _exit(read(p.r, &c, 1) == 1 ? status : 99);
  }
  return pid;
}

void ChildWaitWokenByAnotherThread(const char* name,
                                   const std::function<const char*(pid_t)>& wait_fn) {
  Say("== %s on a child that exits when another thread tells it to", name);
  Pipe p;
  pid_t child = ChildExitingOnByte(p, 7);
  Announcer waiting;
  std::thread waiter([&] {
    waiting.Announce();
    Say("%s -> %s", name, wait_fn(child));
  });
  std::thread teller([&] {
    waiting.WaitParked();
    Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
    WriteByte(p.w, 'x');
  });
  teller.join();
  waiter.join();
}

}  // namespace

int main() {
  alarm(15);  // below the runner's own limit: a hang shows as SIGALRM in the diff

  Say("== two threads ping-pong a byte through two pipes 1000 times");
  Say("checksum %08x", PingPong(1000));

  Say("== 1 MiB through a pipe: the writer blocks on a full pipe until the reader drains it");
  {
    Pipe p;
    constexpr size_t kBytes = 1 << 20;
    static char data[kBytes];
    static char got[kBytes];
    Pattern(data, kBytes);
    ssize_t written = 0;
    size_t n = 0;
    std::thread writer([&] { written = write(p.w, data, kBytes); });
    std::thread reader([&] {
      for (ssize_t r; n < kBytes && (r = read(p.r, got + n, kBytes - n)) > 0;) n += r;
    });
    writer.join();
    reader.join();
    Say("wrote %zd bytes in one call; read %zu bytes, checksum %08x", written, n, Checksum(got, n));
  }

  WaiterWokenAfterOtherWork("poll", [](int fd) {
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, kLongTimeoutMs);
    Say("revents POLLIN: %s", YesNo(pfd.revents & POLLIN));
    return r;
  });
  WaiterWokenAfterOtherWork("ppoll", [](int fd) {
    pollfd pfd{fd, POLLIN, 0};
    timespec t{kLongTimeoutMs / 1000, 0};
    return ppoll(&pfd, 1, &t, nullptr);
  });
  WaiterWokenAfterOtherWork("select", [](int fd) {
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    timeval t{kLongTimeoutMs / 1000, 0};
    int r = select(fd + 1, &rs, nullptr, nullptr, &t);
    Say("fd in the read set: %s", YesNo(FD_ISSET(fd, &rs)));
    return r;
  });
  WaiterWokenAfterOtherWork("pselect", [](int fd) {
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    timespec t{kLongTimeoutMs / 1000, 0};
    return pselect(fd + 1, &rs, nullptr, nullptr, &t, nullptr);
  });
  WaiterWokenAfterOtherWork("epoll_wait", [](int fd) {
    int ep = static_cast<int>(Must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 42;
    Must(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
    epoll_event out{};
    int r = epoll_wait(ep, &out, 1, kLongTimeoutMs);
    Say("event data %u, EPOLLIN: %s", out.data.u32, YesNo(out.events & EPOLLIN));
    close(ep);
    return r;
  });

  Say("== poll and select on an idle pipe, and poll of no fds, in a thread, time out as asked");
  std::thread([] {
    Pipe p;
    pollfd pfd{p.r, POLLIN, 0};
    Stopwatch sw;
    Show(poll(&pfd, 1, 50), "poll 50 ms");
    Say("poll: %s", sw.Waited(50));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p.r, &rs);
    timeval t{0, 50000};
    Stopwatch sw2;
    Show(select(p.r + 1, &rs, nullptr, nullptr, &t), "select 50 ms");
    Say("select: %s, fd in the read set: %s", sw2.Waited(50), YesNo(FD_ISSET(p.r, &rs)));
    Stopwatch sw3;
    Show(poll(nullptr, 0, 50), "poll of no fds 50 ms");
    Say("poll of no fds: %s", sw3.Waited(50));
  }).join();

  ChildWaitWokenByAnotherThread("waitpid", [](pid_t child) {
    int status = 0;
    pid_t r = waitpid(child, &status, 0);
    static char what[64];
    snprintf(what, sizeof what, "%s, exit status %d", r == child ? "the child" : "OTHER",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return what;
  });
  ChildWaitWokenByAnotherThread("waitid", [](pid_t child) {
    siginfo_t info{};
    int r = waitid(P_PID, static_cast<id_t>(child), &info, WEXITED);
    static char what[64];
    snprintf(what, sizeof what, "%d, %s, CLD_EXITED %s, status %d", r,
             info.si_pid == child ? "the child" : "OTHER", YesNo(info.si_code == CLD_EXITED),
             info.si_status);
    return what;
  });

  Say("== waitpid with no child left");
  errno = 0;
  std::thread([] { Show(waitpid(-1, nullptr, 0), "waitpid(-1)"); }).join();
  return 0;
}
