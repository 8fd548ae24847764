// Zero-length reads and writes. read/readv/send/write of 0 bytes return 0 at once on every
// socket. recv of 0 bytes is the kernel's business: with nothing queued it waits (TCP returns 0
// when SO_RCVTIMEO expires, unix stream EAGAIN; without a timeout both would wait forever), with
// bytes queued it returns 0 and consumes nothing; on UDP it waits for a datagram and consumes it.
#include <sys/uio.h>

#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void StreamZero(const char* kind, int a, int b) {
  Say("== %s", kind);
  char buf[16];
  constexpr int kTimeoutMs = 150;
  SetTimeout(b, SO_RCVTIMEO, kTimeoutMs);
  Stopwatch sw;
  Show(recv(b, buf, 0, 0), "recv 0, nothing queued, SO_RCVTIMEO 150 ms");
  Say("recv 0 %s", sw.Waited(kTimeoutMs));
  sw = Stopwatch();
  Show(read(b, buf, 0), "read 0, nothing queued");
  Say("read 0 returned %s", sw.Before(kTimeoutMs));
  sw = Stopwatch();
  Show(recv(b, nullptr, 0, 0), "recv NULL 0");
  Say("recv NULL 0 %s", sw.Waited(kTimeoutMs));
  Show(readv(b, nullptr, 0), "readv 0 iovecs");
  Show(send(a, buf, 0, 0), "send 0");
  Show(write(a, buf, 0), "write 0");
  Show(send(a, nullptr, 0, 0), "send NULL 0");
  Show(writev(a, nullptr, 0), "writev 0 iovecs");
  Show(recv(b, buf, sizeof buf, MSG_DONTWAIT), "recv MSG_DONTWAIT: zero-length sends sent nothing");
  Show(send(a, "abc", 3, 0), "send 3");
  WaitQueued(b, 3);
  Show(recv(b, buf, 0, 0), "recv 0, 3 queued");
  Show(recv(b, buf, 0, MSG_WAITALL), "recv 0 MSG_WAITALL");
  Show(recv(b, buf, sizeof buf, 0), "recv 16: nothing was consumed");
  shutdown(a, SHUT_WR);
  Show(recv(b, buf, 0, 0), "recv 0 after peer shutdown");
  Show(recv(b, buf, sizeof buf, 0), "recv 16 after peer shutdown");
  close(b);
  Show(send(a, buf, 0, MSG_NOSIGNAL), "send 0 after the peer closed");
  close(a);
}

}  // namespace

int main() {
  Pair p = TcpPair();
  StreamZero("TCP", p.client, p.server);
  int sv[2];
  Must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
  StreamZero("unix stream", sv[0], sv[1]);

  Say("== UDP");
  int a = UdpSocket(), b = UdpSocket();
  sockaddr_in to = Loopback(LocalPort(b));
  Show(connect(a, reinterpret_cast<sockaddr*>(&to), sizeof to), "connect");
  char buf[16];
  constexpr int kTimeoutMs = 150;
  // Set first so that a read of 0 that wrongly waits shows in the transcript instead of hanging.
  SetTimeout(b, SO_RCVTIMEO, kTimeoutMs);
  Stopwatch sw;
  Show(read(b, buf, 0), "read 0, nothing queued");
  Say("read 0 returned %s", sw.Before(kTimeoutMs));
  sw = Stopwatch();
  Show(recv(b, buf, 0, 0), "recv 0, nothing queued, SO_RCVTIMEO 150 ms");
  Say("recv 0 %s", sw.Waited(kTimeoutMs));
  Show(recv(b, buf, 0, MSG_DONTWAIT), "recv 0 MSG_DONTWAIT, nothing queued");
  Show(send(a, "hello", 5, 0), "send 5");
  Show(send(a, "x", 1, 0), "send 1");
  Show(send(a, buf, 0, 0), "send 0");
  Show(recv(b, buf, 0, MSG_PEEK | MSG_TRUNC), "recv 0 MSG_PEEK|MSG_TRUNC");
  Show(recv(b, buf, 0, 0), "recv 0: consumes the 5-byte datagram");
  Show(recv(b, buf, sizeof buf, 0), "recv 16");
  Show(recv(b, buf, sizeof buf, 0), "recv 16: the zero-length datagram");
  SetTimeout(b, SO_RCVTIMEO, 5000);
  {
    Announcer parked;
    std::thread sender([&] {
      parked.WaitParked();
      send(a, "late", 4, 0);
    });
    parked.Announce();
    sw = Stopwatch();
    Show(recv(b, buf, 0, 0), "blocking recv 0 until a datagram arrives");
    Say("recv 0 returned %s", sw.Before(5000));
    sender.join();
  }
  Show(recv(b, buf, sizeof buf, MSG_DONTWAIT), "recv MSG_DONTWAIT: it was consumed");
  close(a);
  close(b);
  return 0;
}
