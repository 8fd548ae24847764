// poll, select and the app's own epoll on blocking sockets that blocking calls have already
// waited on: they report the kernel's readiness unchanged (the app's level-triggered epoll is
// independent of any other epoll instance watching the same socket), and a blocked poll wakes
// when data arrives.
#include <sys/epoll.h>
#include <sys/select.h>

#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void ShowPoll(int fd, short events, int timeout_ms, const char* what) {
  pollfd pfd{fd, events, 0};
  int r = poll(&pfd, 1, timeout_ms);
  if (r < 0) {
    Say("poll %s -> -1 %s", what, ErrnoName(errno));
    return;
  }
  Say("poll %s -> %d, POLLIN %s POLLOUT %s POLLHUP %s POLLRDHUP %s POLLERR %s", what, r,
      YesNo(pfd.revents & POLLIN), YesNo(pfd.revents & POLLOUT), YesNo(pfd.revents & POLLHUP),
      YesNo(pfd.revents & POLLRDHUP), YesNo(pfd.revents & POLLERR));
}

void WaitOnce(int fd, int peer) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked(30);
    SendStr(peer, "w");
  });
  char c;
  parked.Announce();
  Show(recv(fd, &c, 1, 0), "blocking recv that waited");
  sender.join();
}

}  // namespace

int main() {
  Pair p = TcpPair();
  WaitOnce(p.server, p.client);

  Say("== poll");
  ShowPoll(p.server, POLLIN | POLLOUT | POLLRDHUP, 0, "idle connection");
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  ShowPoll(p.server, POLLIN | POLLRDHUP, 0, "3 bytes queued");
  ShowPoll(p.server, POLLIN, 0, "again (level: still readable)");
  char buf[64];
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  ShowPoll(p.server, POLLIN, 0, "after draining");
  {
    std::thread sender([&] {
      SleepMs(50);
      SendStr(p.client, "x");
    });
    ShowPoll(p.server, POLLIN, 5000, "blocking until data arrives");
    sender.join();
    Show(recv(p.server, buf, sizeof buf, 0), "recv");
  }
  {
    Stopwatch sw;
    ShowPoll(p.server, POLLIN, 150, "with a 150 ms timeout");
    Say("poll %s", sw.Waited(150));
  }

  Say("== select");
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(p.server, &rd);
  FD_SET(p.server, &wr);
  timeval tv{0, 0};
  Show(select(p.server + 1, &rd, &wr, nullptr, &tv), "select idle");
  Say("readable %s writable %s", YesNo(FD_ISSET(p.server, &rd)), YesNo(FD_ISSET(p.server, &wr)));
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  FD_ZERO(&rd);
  FD_SET(p.server, &rd);
  tv = {1, 0};
  Show(select(p.server + 1, &rd, nullptr, nullptr, &tv), "select with 3 bytes queued");
  Say("readable %s", YesNo(FD_ISSET(p.server, &rd)));
  Show(recv(p.server, buf, sizeof buf, 0), "recv");

  Say("== the app's own level-triggered epoll");
  int ep = Must(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = 7;
  Show(epoll_ctl(ep, EPOLL_CTL_ADD, p.server, &ev), "epoll_ctl ADD");
  epoll_event out[4];
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait idle");
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  int n = Show(epoll_wait(ep, out, 4, 1000), "epoll_wait");
  if (n > 0) Say("data %u EPOLLIN %s", out[0].data.u32, YesNo(out[0].events & EPOLLIN));
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait again (level)");
  Show(recv(p.server, buf, 1, 0), "recv 1");
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait, 2 bytes left");
  Show(recv(p.server, buf, sizeof buf, 0), "recv the rest");
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait drained");
  WaitOnce(p.server, p.client);
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait after another blocking recv waited");

  Say("== the app's own edge-triggered epoll");
  ev.events = EPOLLIN | EPOLLET;
  Show(epoll_ctl(ep, EPOLL_CTL_MOD, p.server, &ev), "epoll_ctl MOD EPOLLET");
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  Show(epoll_wait(ep, out, 4, 1000), "epoll_wait");
  Show(epoll_wait(ep, out, 4, 0), "epoll_wait again (edge: nothing new)");
  Show(recv(p.server, buf, sizeof buf, 0), "recv");

  // In fibers mode a thread is a fiber, and a poll of one of gonet's sockets from a fiber parks
  // on the socket's pollDesc (core/fd/poll_wait.cc) instead of the kernel: the same answers.
  Say("== poll and ppoll of one socket from another thread");
  std::thread([&] {
    std::thread sender([&] {
      SleepMs(50);
      SendStr(p.client, "x");
    });
    ShowPoll(p.server, POLLIN, 5000, "from a thread, blocking until data arrives");
    sender.join();
    ShowPoll(p.server, POLLOUT, 1000, "from a thread, for writing");
    Show(recv(p.server, buf, sizeof buf, 0), "recv");
    {
      Stopwatch sw;
      ShowPoll(p.server, POLLIN, 150, "from a thread, with a 150 ms timeout");
      Say("poll %s", sw.Waited(150));
    }
    Show(send(p.client, "y", 1, 0), "send 1");
    WaitQueued(p.server, 1);
    pollfd pfd{p.server, POLLIN, 0};
    timespec bad{0, 2000000000};  // tv_nsec out of range: EINVAL even with data queued
    Show(ppoll(&pfd, 1, &bad, nullptr), "ppoll with an invalid timeout");
    timespec t150{0, 150000000};
    Show(ppoll(&pfd, 1, &t150, nullptr), "ppoll, 1 byte queued");
    Show(recv(p.server, buf, sizeof buf, 0), "recv");
    Stopwatch sw;
    Show(ppoll(&pfd, 1, &t150, nullptr), "ppoll with a 150 ms timeout");
    Say("ppoll %s", sw.Waited(150));
  }).join();

  Say("== peer close");
  close(p.client);
  ShowPoll(p.server, POLLIN | POLLRDHUP, 1000, "after the peer closed");
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  close(ep);
  close(p.server);

  Say("== listener readiness");
  uint16_t port;
  int listener = TcpListener(4, &port);
  {
    Announcer parked;
    std::thread connector([&] {
      parked.WaitParked(30);
      close(TcpConnect(port));
    });
    parked.Announce();
    int fd = ShowOk(accept(listener, nullptr, nullptr), "blocking accept that waited");
    connector.join();
    close(fd);
  }
  ShowPoll(listener, POLLIN, 0, "listener, nothing pending");
  int c = TcpConnect(port);
  ShowPoll(listener, POLLIN, 1000, "listener, one pending");
  close(Must(accept(listener, nullptr, nullptr), "accept"));
  close(c);
  close(listener);
  return 0;
}
