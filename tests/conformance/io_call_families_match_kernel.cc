// Every read and write entry point on a blocking socket moves the same bytes with the same
// counts as the kernel: read/write, readv/writev, recv/send, recvfrom/sendto, recvmsg/sendmsg,
// recvmmsg/sendmmsg, including the blocking waits (each waits for its first byte or message,
// big writes complete fully) and what they report besides bytes (addresses, msg_flags).
#include <sys/uio.h>

#include <thread>
#include <vector>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void Said(const char* what, const char* got, ssize_t n) {
  Say("  %s got '%.*s'", what, static_cast<int>(n > 0 ? n : 0), got);
}

// The call under test, blocked until another thread sends `text`.
template <typename Call>
void BlockingReceive(int tx, const char* text, Call call) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked(50);
    SendStr(tx, text);
  });
  parked.Announce();
  call();
  sender.join();
}

void StreamCalls() {
  Say("== TCP, data already queued");
  Pair p = TcpPair();
  char buf[64], b1[3], b2[5], b3[64];
  Show(write(p.client, "write-bytes", 11), "write 11");
  WaitQueued(p.server, 11);
  ssize_t n = Show(read(p.server, buf, sizeof buf), "read 64");
  Said("read", buf, n);

  iovec out[3] = {{const_cast<char*>("abc"), 3},
                  {const_cast<char*>("defgh"), 5},
                  {const_cast<char*>("ijklmnop"), 8}};
  Show(writev(p.client, out, 3), "writev 3+5+8");
  WaitQueued(p.server, 16);
  iovec in[3] = {{b1, sizeof b1}, {b2, sizeof b2}, {b3, 4}};
  n = Show(readv(p.server, in, 3), "readv 3+5+4");
  Say("  readv got '%.3s' '%.5s' '%.4s'", b1, b2, b3);
  n = Show(recvfrom(p.server, buf, sizeof buf, 0, nullptr, nullptr), "recvfrom 64");
  Said("recvfrom", buf, n);

  msghdr mh{};
  mh.msg_iov = out;
  mh.msg_iovlen = 3;
  Show(sendmsg(p.client, &mh, 0), "sendmsg 3+5+8");
  WaitQueued(p.server, 16);
  sockaddr_storage from;
  msghdr rm{};
  rm.msg_name = &from;
  rm.msg_namelen = sizeof from;
  rm.msg_iov = in;
  rm.msg_iovlen = 3;
  Show(recvmsg(p.server, &rm, 0), "recvmsg 3+5+4");
  Say("  recvmsg got '%.3s' '%.5s' '%.4s', msg_namelen %u, msg_flags %#x", b1, b2, b3,
      static_cast<unsigned>(rm.msg_namelen), static_cast<unsigned>(rm.msg_flags));
  socklen_t fromlen = sizeof from;
  n = Show(recvfrom(p.server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromlen),
           "recvfrom 64 with an address buffer");
  Say("  recvfrom got '%.*s', addrlen %u", static_cast<int>(n > 0 ? n : 0), buf,
      static_cast<unsigned>(fromlen));

  Say("== TCP sendmmsg / recvmmsg with exact-size buffers");
  char m1[] = "0123456789", m2[] = "abcdefghijklmnopqrst";
  iovec o1{m1, 10}, o2{m2, 20};
  mmsghdr outv[2] = {};
  outv[0].msg_hdr.msg_iov = &o1;
  outv[0].msg_hdr.msg_iovlen = 1;
  outv[1].msg_hdr.msg_iov = &o2;
  outv[1].msg_hdr.msg_iovlen = 1;
  Show(sendmmsg(p.client, outv, 2, 0), "sendmmsg 2 messages");
  Say("  msg_len %u %u", outv[0].msg_len, outv[1].msg_len);
  WaitQueued(p.server, 30);
  char r1[10], r2[20];
  iovec i1{r1, 10}, i2{r2, 20};
  mmsghdr inv[2] = {};
  inv[0].msg_hdr.msg_iov = &i1;
  inv[0].msg_hdr.msg_iovlen = 1;
  inv[1].msg_hdr.msg_iov = &i2;
  inv[1].msg_hdr.msg_iovlen = 1;
  Show(recvmmsg(p.server, inv, 2, 0, nullptr), "recvmmsg 10+20");
  Say("  msg_len %u %u, '%.10s' '%.20s'", inv[0].msg_len, inv[1].msg_len, r1, r2);

  Say("== TCP, each call blocks until data arrives");
  BlockingReceive(p.client, "r1", [&] {
    ssize_t r = Show(read(p.server, buf, sizeof buf), "blocking read");
    Said("read", buf, r);
  });
  BlockingReceive(p.client, "rv2", [&] {
    iovec v[2] = {{b1, 1}, {b3, sizeof b3}};
    Show(readv(p.server, v, 2), "blocking readv 1+64");
    Say("  readv got '%.1s' '%.2s'", b1, b3);
  });
  BlockingReceive(p.client, "rf3", [&] {
    ssize_t r = Show(recvfrom(p.server, buf, sizeof buf, 0, nullptr, nullptr), "blocking recvfrom");
    Said("recvfrom", buf, r);
  });
  BlockingReceive(p.client, "rm4", [&] {
    iovec v{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    ssize_t r = Show(recvmsg(p.server, &m, 0), "blocking recvmsg");
    Said("recvmsg", buf, r);
  });
  BlockingReceive(p.client, "mm5", [&] {
    iovec v{buf, 3};
    mmsghdr m{};
    m.msg_hdr.msg_iov = &v;
    m.msg_hdr.msg_iovlen = 1;
    Show(recvmmsg(p.server, &m, 1, 0, nullptr), "blocking recvmmsg 1");
    Say("  msg_len %u '%.3s'", m.msg_len, buf);
  });

  Say("== TCP, big blocking writes complete fully");
  constexpr size_t kChunk = 1 << 20;
  std::vector<char> data(3 * kChunk), got(3 * kChunk);
  Pattern(data.data(), data.size());
  auto drain = [&](size_t want) {
    SleepMs(30);
    RecvExactly(p.server, got.data(), want);
    return memcmp(got.data(), data.data(), want) == 0;
  };
  {
    bool same = false;
    std::thread reader([&] { same = drain(3 * kChunk); });
    iovec v[3] = {
        {data.data(), kChunk}, {data.data() + kChunk, kChunk}, {data.data() + 2 * kChunk, kChunk}};
    Show(writev(p.client, v, 3), "writev 3 x 1 MiB");
    reader.join();
    Say("  reader got the same bytes: %s", YesNo(same));
  }
  {
    bool same = false;
    std::thread reader([&] { same = drain(3 * kChunk); });
    iovec v[2] = {{data.data(), kChunk}, {data.data() + kChunk, 2 * kChunk}};
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = 2;
    Show(sendmsg(p.client, &m, 0), "sendmsg 1 MiB + 2 MiB");
    reader.join();
    Say("  reader got the same bytes: %s", YesNo(same));
  }
  {
    bool same = false;
    std::thread reader([&] { same = drain(3 * kChunk); });
    Show(sendto(p.client, data.data(), data.size(), 0, nullptr, 0), "sendto 3 MiB");
    reader.join();
    Say("  reader got the same bytes: %s", YesNo(same));
  }
  {
    bool same = false;
    std::thread reader([&] { same = drain(2 * kChunk); });
    iovec v[2] = {{data.data(), kChunk}, {data.data() + kChunk, kChunk}};
    mmsghdr m[1] = {};
    m[0].msg_hdr.msg_iov = v;
    m[0].msg_hdr.msg_iovlen = 2;
    Show(sendmmsg(p.client, m, 1, 0), "sendmmsg 1 message of 2 MiB");
    reader.join();
    Say("  msg_len %u, reader got the same bytes: %s", m[0].msg_len, YesNo(same));
  }
  {
    // A big blocking recv with MSG_WAITALL into several iovecs.
    std::thread writer([&] {
      SleepMs(20);
      SendAll(p.client, data.data(), data.size());
    });
    iovec v[2] = {{got.data(), kChunk}, {got.data() + kChunk, 2 * kChunk}};
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = 2;
    Show(recvmsg(p.server, &m, MSG_WAITALL), "recvmsg MSG_WAITALL 3 MiB");
    writer.join();
    Say("  same bytes: %s", YesNo(memcmp(got.data(), data.data(), data.size()) == 0));
  }
  CloseBoth(p);
}

void DatagramCalls() {
  Say("== UDP sendmmsg / recvmmsg");
  int a = UdpSocket(), b = UdpSocket();
  sockaddr_in to = Loopback(LocalPort(b));
  Show(connect(a, reinterpret_cast<sockaddr*>(&to), sizeof to), "connect");
  const char* texts[3] = {"one", "three", "fifteen-fifteen"};
  iovec o[3];
  mmsghdr outv[3] = {};
  for (int i = 0; i < 3; ++i) {
    o[i] = {const_cast<char*>(texts[i]), strlen(texts[i])};
    outv[i].msg_hdr.msg_iov = &o[i];
    outv[i].msg_hdr.msg_iovlen = 1;
  }
  Show(sendmmsg(a, outv, 3, 0), "sendmmsg 3 datagrams");
  char bufs[5][32];
  iovec iv[5];
  mmsghdr inv[5] = {};
  sockaddr_in froms[5];
  auto reset = [&] {
    for (int i = 0; i < 5; ++i) {
      iv[i] = {bufs[i], 4};  // 4 bytes: the longer datagrams truncate
      inv[i] = {};
      inv[i].msg_hdr.msg_iov = &iv[i];
      inv[i].msg_hdr.msg_iovlen = 1;
      inv[i].msg_hdr.msg_name = &froms[i];
      inv[i].msg_hdr.msg_namelen = sizeof froms[i];
    }
  };
  reset();
  int n = Show(recvmmsg(b, inv, 5, MSG_WAITFORONE, nullptr), "recvmmsg 5 MSG_WAITFORONE");
  for (int i = 0; i < n; ++i) {
    Say("  [%d] msg_len %u '%.*s' truncated %s namelen %u", i, inv[i].msg_len,
        static_cast<int>(inv[i].msg_len), bufs[i], YesNo(inv[i].msg_hdr.msg_flags & MSG_TRUNC),
        static_cast<unsigned>(inv[i].msg_hdr.msg_namelen));
  }
  Say("== UDP blocking recvmmsg waits for all messages");
  reset();
  Show(send(a, "1st", 3, 0), "send 3");
  std::thread late([&] {
    SleepMs(50);
    send(a, "2nd", 3, 0);
  });
  n = Show(recvmmsg(b, inv, 2, 0, nullptr), "recvmmsg 2");
  late.join();
  for (int i = 0; i < n; ++i) Say("  [%d] '%.*s'", i, static_cast<int>(inv[i].msg_len), bufs[i]);
  Say("== UDP recvmmsg with a timeout parameter and one message queued");
  reset();
  Show(send(a, "only", 4, 0), "send 4");
  timespec ts{0, 100 * 1000000};
  SetTimeout(b, SO_RCVTIMEO, 150);
  n = Show(recvmmsg(b, inv, 2, 0, &ts), "recvmmsg 2, SO_RCVTIMEO 150 ms");
  for (int i = 0; i < n; ++i) Say("  [%d] '%.*s'", i, static_cast<int>(inv[i].msg_len), bufs[i]);
  reset();
  n = Show(recvmmsg(b, inv, 2, 0, nullptr), "recvmmsg 2, nothing queued, SO_RCVTIMEO 150 ms");
  close(a);
  close(b);
}

}  // namespace

int main() {
  StreamCalls();
  DatagramCalls();
  return 0;
}
