// signal(7) for the calls that carry progress across an interruption: a blocking connect whose
// SYN was dropped (full accept queue) fails with EINTR without SA_RESTART, and the handshake
// goes on in the background, so the next blocking connect waits for it and returns 0; with
// SA_RESTART the interrupted connect is restarted and returns 0 once the handshake completes. A
// recv MSG_WAITALL that already has some bytes returns them when a signal interrupts it.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

std::atomic<int> handled{0};
void OnSignal(int) { handled.fetch_add(1); }

void Install(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGUSR1, &sa, nullptr), "sigaction");
}

// Runs call() on a thread and signals it every 20 ms until it returns; after the handler has
// run twice, unblock() (once) lets a restarted call finish.
template <typename Call, typename Unblock>
long Pester(Call call, Unblock unblock, int* err) {
  std::atomic<bool> done{false};
  std::atomic<pthread_t> worker_id{};
  long result = 0;
  Announcer parked;
  std::thread worker([&] {
    worker_id.store(pthread_self());
    parked.Announce();
    result = call();
    *err = errno;
    done.store(true);
  });
  parked.WaitParked(50);
  handled.store(0);
  bool unblocked = false;
  while (!done.load()) {
    pthread_kill(worker_id.load(), SIGUSR1);
    SleepMs(20);
    if (!unblocked && handled.load() >= 2) {
      unblocked = true;
      unblock();
    }
  }
  worker.join();
  return result;
}

// A listener whose accept queue (backlog 0) already holds one connection: the next connect's
// SYN is dropped and its connect blocks until the queue has room and the SYN is retransmitted.
struct FullListener {
  uint16_t port;
  int fd;
  int queued_client;
  FullListener() {
    fd = TcpListener(0, &port);
    queued_client = TcpConnect(port);
  }
  void MakeRoom() { close(Must(accept(fd, nullptr, nullptr), "accept")); }
  ~FullListener() {
    close(queued_client);
    close(fd);
  }
};

void Connect(bool restart) {
  Say("== blocking connect interrupted, %s", restart ? "SA_RESTART" : "no SA_RESTART");
  Install(restart);
  FullListener full;
  sockaddr_in sa = Loopback(full.port);
  int fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  int err = 0;
  // Without SA_RESTART nothing needs unblocking: the first signal ends the call.
  long r = Pester([&] { return static_cast<long>(connect(fd, (sockaddr*)&sa, sizeof sa)); },
                  [&] {
                    if (restart) full.MakeRoom();
                  },
                  &err);
  if (r < 0) {
    Say("connect -> -1 %s", ErrnoName(err));
  } else {
    Say("connect -> %ld", r);
  }
  Say("handler ran: %s", YesNo(handled.load() > 0));
  if (!restart) {
    full.MakeRoom();
    Show(connect(fd, (sockaddr*)&sa, sizeof sa), "blocking connect again, after making room");
  }
  Show(connect(fd, (sockaddr*)&sa, sizeof sa), "connect once connected");
  Show(send(fd, "hi", 2, 0), "send");
  int a = Must(accept(full.fd, nullptr, nullptr), "accept");
  char buf[8];
  Show(recv(a, buf, sizeof buf, 0), "peer recv");
  close(a);
  close(fd);
}

void WaitAll(bool restart) {
  Say("== recv MSG_WAITALL with 3 of 10 bytes, interrupted, %s",
      restart ? "SA_RESTART" : "no SA_RESTART");
  Install(restart);
  Pair p = TcpPair();
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  char buf[10];
  int err = 0;
  long r = Pester([&] { return static_cast<long>(recv(p.server, buf, sizeof buf, MSG_WAITALL)); },
                  [] {}, &err);
  if (r < 0) {
    Say("recv 10 MSG_WAITALL -> -1 %s", ErrnoName(err));
  } else {
    Say("recv 10 MSG_WAITALL -> %ld '%.*s'", r, static_cast<int>(r), buf);
  }
  Say("handler ran: %s", YesNo(handled.load() > 0));
  Say("== recv MSG_WAITALL with nothing queued, interrupted, %s",
      restart ? "SA_RESTART" : "no SA_RESTART");
  r = Pester([&] { return static_cast<long>(recv(p.server, buf, sizeof buf, MSG_WAITALL)); },
             [&] { SendStr(p.client, "0123456789"); }, &err);
  if (r < 0) {
    Say("recv 10 MSG_WAITALL -> -1 %s", ErrnoName(err));
  } else {
    Say("recv 10 MSG_WAITALL -> %ld", r);
  }
  CloseBoth(p);
}

}  // namespace

int main() {
  Connect(false);
  Connect(true);
  WaitAll(false);
  WaitAll(true);
  return 0;
}
