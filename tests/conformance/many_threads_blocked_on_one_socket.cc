// Several threads blocked on the same socket at once: readers on one TCP connection, acceptors on
// one listener, UDP receivers on one socket. Every byte, connection and datagram goes to exactly
// one of them and none is left waiting forever; who gets what is the kernel's choice, so only
// totals are printed.
#include <atomic>
#include <thread>
#include <vector>

#include "loopback.h"

using namespace conf;

namespace {
constexpr int kThreads = 4;
}

int main() {
  Say("== %d readers on one TCP connection", kThreads);
  {
    Pair p = TcpPair();
    std::atomic<long> total{0};
    std::atomic<int> eofs{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < kThreads; ++i) {
      readers.emplace_back([&] {
        char buf[512];
        for (;;) {
          ssize_t n = recv(p.server, buf, sizeof buf, 0);
          if (n <= 0) break;
          total += n;
        }
        eofs++;
      });
    }
    constexpr int kChunks = 200;
    char chunk[300];
    Pattern(chunk, sizeof chunk);
    for (int i = 0; i < kChunks; ++i) {
      SendAll(p.client, chunk, sizeof chunk);
      if (i % 20 == 0) SleepMs(2);
    }
    shutdown(p.client, SHUT_WR);
    for (auto& t : readers) t.join();
    Say("bytes read in total: %ld of %d, readers that saw EOF: %d", total.load(),
        kChunks * static_cast<int>(sizeof chunk), eofs.load());
    CloseBoth(p);
  }

  Say("== %d writers on one TCP connection, one slow reader", kThreads);
  {
    Pair p = TcpPair();
    constexpr size_t kEach = 1 << 20;
    std::atomic<long> sent{0};
    std::vector<std::thread> writers;
    for (int i = 0; i < kThreads; ++i) {
      writers.emplace_back([&] {
        std::vector<char> data(kEach, 'w');
        ssize_t n = send(p.client, data.data(), data.size(), 0);
        if (n > 0) sent += n;
      });
    }
    SleepMs(30);
    long got = 0;
    std::vector<char> buf(64 * 1024);
    while (got < static_cast<long>(kThreads * kEach)) {
      ssize_t n = recv(p.server, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got += n;
    }
    for (auto& t : writers) t.join();
    Say("each blocking send completed: %s, reader got %ld bytes",
        YesNo(sent.load() == static_cast<long>(kThreads * kEach)), got);
    CloseBoth(p);
  }

  Say("== %d acceptors on one listener", kThreads);
  {
    uint16_t port;
    int listener = TcpListener(32, &port);
    constexpr int kConns = 12;
    std::atomic<int> accepted{0};
    std::vector<int> served(kConns, 0);
    std::vector<std::thread> acceptors;
    for (int i = 0; i < kThreads; ++i) {
      acceptors.emplace_back([&] {
        for (;;) {
          int fd = accept(listener, nullptr, nullptr);
          if (fd < 0) break;
          unsigned char id = 0;
          if (recv(fd, &id, 1, MSG_WAITALL) == 1 && id < kConns) {
            __atomic_add_fetch(&served[id], 1, __ATOMIC_SEQ_CST);
            send(fd, &id, 1, 0);
          }
          close(fd);
          // The last connection is a stop signal for one acceptor.
          if (id == 255) break;
          accepted++;
        }
      });
    }
    int answered = 0;
    for (int i = 0; i < kConns; ++i) {
      int c = TcpConnect(port);
      unsigned char id = static_cast<unsigned char>(i), back = 0;
      SendAll(c, &id, 1);
      if (recv(c, &back, 1, MSG_WAITALL) == 1 && back == id) answered++;
      close(c);
    }
    for (int i = 0; i < kThreads; ++i) {
      int c = TcpConnect(port);
      unsigned char stop = 255;
      SendAll(c, &stop, 1);
      char x;
      recv(c, &x, 1, 0);
      close(c);
    }
    for (auto& t : acceptors) t.join();
    int once = 0;
    for (int s : served) once += s == 1;
    Say("connections answered: %d of %d, each served exactly once: %s, all acceptors stopped",
        answered, kConns, YesNo(once == kConns));
    close(listener);
  }

  Say("== %d receivers on one UDP socket", kThreads);
  {
    int rx = UdpSocket(), tx = UdpSocket();
    sockaddr_in to = Loopback(LocalPort(rx));
    Must(connect(tx, reinterpret_cast<sockaddr*>(&to), sizeof to), "connect");
    std::atomic<int> got{0};
    std::vector<std::thread> receivers;
    for (int i = 0; i < kThreads; ++i) {
      receivers.emplace_back([&] {
        char buf[64];
        for (;;) {
          ssize_t n = recv(rx, buf, sizeof buf, 0);
          if (n <= 0) break;  // a zero-length datagram stops one receiver
          got++;
        }
      });
    }
    constexpr int kDatagrams = 100;
    for (int i = 0; i < kDatagrams; ++i) {
      send(tx, "d", 1, 0);
      if (i % 10 == 0) SleepMs(1);
    }
    for (int i = 0; i < kThreads; ++i) send(tx, "", 0, 0);
    for (auto& t : receivers) t.join();
    Say("datagrams received: %d of %d, all receivers stopped", got.load(), kDatagrams);
    close(rx);
    close(tx);
  }
  return 0;
}
