// Core's socket operations against the kernel: each input is a short program of calls
// (RecvFrom, SendTo, RecvMsg, SendMsg, SetSockOpt, Fcntl) with fuzzed fds, lengths, flags,
// msghdr contents and optlen. It runs twice on identical fresh socketpairs: once through core
// (threads mode, netpoller path: the path where gonet emulates blocking itself; set
// FUZZ_OPS_WAIT=kernel for the kernel-wait path), doing what the shim does on kPassthrough, and
// once straight through libc. Return values, errno and every byte written back must agree.
//
// Both sides start with a 1 ms SO_RCVTIMEO/SO_SNDTIMEO, and a fuzzed timeout is never zero
// (zero means "forever"), so a call that would block returns EAGAIN on both sides instead of
// hanging the fuzzer. Buffers are always as large as the largest length a call can name, or
// NULL on both sides, so the kernel never writes outside them.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/fd/ops.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"

namespace {

using gonet::core::IoResult;

constexpr size_t kMaxLen = 4096;
constexpr int kMaxCalls = 12;

// Consumes the input a byte at a time; zeros once it runs out.
struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t U8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  uint32_t U32() { return static_cast<uint32_t>(U16() | U16() << 16); }
};

struct Result {
  long ret;
  int err;
  uint8_t buf[kMaxLen];  // data, msghdr name/control or optval written back
  socklen_t len1;
  size_t len2;
  int msg_flags;
};

struct Side {
  bool core;
  int sv[2];
  int pipe_fd[2];
};

// One call, described once and run on either side.
struct Call {
  uint8_t op, which_fd, iovcnt;
  int flags, level, name, cmd;
  size_t len;
  socklen_t alen;
  uint32_t arg;
  bool null_buf, use_name, use_control;
  uint8_t data[kMaxLen];
};

int PickFd(const Side& s, uint8_t which) {
  switch (which % 6) {
    case 0:
      return s.sv[0];
    case 1:
      return s.sv[1];
    case 2:
      return s.pipe_fd[0];
    case 3:
      return s.pipe_fd[1];
    case 4:
      return -1;
    default:
      return 1 << 20;  // closed, past any open fd
  }
}

// Finishes a call the way the shim does: kPassthrough means "make the real call".
template <typename Real>
void Finish(IoResult r, Result* out, Real real) {
  if (r.passthrough()) {
    errno = 0;
    out->ret = real();
    out->err = out->ret < 0 ? errno : 0;
  } else {
    out->ret = r.ok() ? r.n : -1;
    out->err = r.ok() ? 0 : r.err;
  }
}

void Run(const Side& s, const Call& c, Result* out) {
  using namespace gonet::core;
  memset(out, 0xAB, sizeof *out);
  const int fd = PickFd(s, c.which_fd);
  void* buf = c.null_buf ? nullptr : out->buf;
  out->len1 = c.alen;
  static thread_local sockaddr_storage name;
  switch (c.op % 6) {
    case 0: {  // RecvFrom
      sockaddr* a = c.use_name ? reinterpret_cast<sockaddr*>(&name) : nullptr;
      socklen_t* al = c.use_name ? &out->len1 : nullptr;
      if (c.use_name && out->len1 > sizeof name) out->len1 = sizeof name;
      if (s.core) {
        Finish(RecvFrom(fd, buf, c.len, c.flags, a, al), out,
               [&] { return recvfrom(fd, buf, c.len, c.flags, a, al); });
      } else {
        Finish(IoResult::Passthrough(), out,
               [&] { return recvfrom(fd, buf, c.len, c.flags, a, al); });
      }
      break;
    }
    case 1: {  // SendTo (no address: unix socketpairs are connected)
      const void* data = c.null_buf ? nullptr : c.data;
      const int flags = c.flags | MSG_NOSIGNAL;
      if (s.core) {
        Finish(SendTo(fd, data, c.len, flags, nullptr, 0), out,
               [&] { return sendto(fd, data, c.len, flags, nullptr, 0); });
      } else {
        Finish(IoResult::Passthrough(), out,
               [&] { return sendto(fd, data, c.len, flags, nullptr, 0); });
      }
      break;
    }
    case 2:
    case 3: {  // RecvMsg / SendMsg with up to 4 iovecs over buf
      iovec iov[4];
      const size_t n = c.iovcnt % 5;
      for (size_t i = 0; i < n; ++i) {
        iov[i].iov_base = c.null_buf ? nullptr : out->buf + i * (kMaxLen / 4);
        iov[i].iov_len = (c.len >> (i * 3)) % (kMaxLen / 4 + 1);
      }
      alignas(cmsghdr) static thread_local uint8_t control[256];
      msghdr m{};
      m.msg_iov = iov;
      // Past IOV_MAX sometimes: the kernel says EMSGSIZE without reading the array.
      // FUZZ_OPS_IOV_MAX=0 leaves that case out (to look past a known divergence).
      static const bool past_iov_max =
          getenv("FUZZ_OPS_IOV_MAX") == nullptr || strcmp(getenv("FUZZ_OPS_IOV_MAX"), "0") != 0;
      m.msg_iovlen = past_iov_max && (c.iovcnt & 0x80) ? 1024 + c.iovcnt : n;
      if (c.use_name) {
        m.msg_name = &name;
        m.msg_namelen = c.alen % (sizeof name + 1);
      }
      const bool recv = c.op % 6 == 2;
      if (c.use_control) {
        m.msg_control = control;
        m.msg_controllen = c.arg % (sizeof control + 1);
        memcpy(control, c.data, sizeof control);
        // Never a valid SCM_RIGHTS/SCM_CREDENTIALS: fds passed would differ between the sides.
        if (!recv) reinterpret_cast<cmsghdr*>(control)->cmsg_level = SOL_IP;
      }
      if (!recv) memcpy(out->buf, c.data, kMaxLen);
      const int flags = recv ? c.flags : c.flags | MSG_NOSIGNAL;
      if (recv) {
        auto real = [&] { return recvmsg(fd, &m, flags); };
        Finish(s.core ? RecvMsg(fd, &m, flags) : IoResult::Passthrough(), out, real);
      } else {
        auto real = [&] { return sendmsg(fd, &m, flags); };
        Finish(s.core ? SendMsg(fd, &m, flags) : IoResult::Passthrough(), out, real);
      }
      out->len1 = m.msg_namelen;
      out->len2 = m.msg_controllen;
      out->msg_flags = m.msg_flags;
      break;
    }
    case 4: {  // SetSockOpt; a timeout is never zero (forever) and at most ~2 ms
      uint8_t val[64];
      memcpy(val, c.data, sizeof val);
      const bool timeo = c.level == SOL_SOCKET && (c.name == SO_RCVTIMEO || c.name == SO_SNDTIMEO ||
                                                   c.name == 66 || c.name == 67);
      if (timeo) {
        timeval tv{(c.arg & 1) ? -1 : 0, static_cast<suseconds_t>(1 + (c.arg >> 1) % 2000)};
        if (c.arg & 2) tv.tv_usec = 1000000 + (c.arg >> 2) % 10;  // EDOM
        memset(val, 0, sizeof val);
        memcpy(val, &tv, sizeof tv);
      }
      const socklen_t len = c.alen % (sizeof val + 1);
      const void* v = c.null_buf ? nullptr : val;
      auto real = [&] { return setsockopt(fd, c.level, c.name, v, len); };
      Finish(s.core ? SetSockOpt(fd, c.level, c.name, v, len) : IoResult::Passthrough(), out, real);
      break;
    }
    default: {  // Fcntl, without commands that block, signal others or leave locks
      static const int kCmds[] = {F_GETFL, F_SETFL,         F_GETFD,      F_SETFD,
                                  F_DUPFD, F_DUPFD_CLOEXEC, F_GETPIPE_SZ, 9999};
      const int cmd = kCmds[c.cmd % 8];
      unsigned long arg = c.arg;
      if (cmd == F_SETFL) arg &= ~static_cast<unsigned long>(O_ASYNC);
      auto real = [&] { return static_cast<long>(fcntl(fd, cmd, arg)); };
      Finish(s.core ? Fcntl(fd, cmd, arg) : IoResult::Passthrough(), out, real);
      if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && out->ret >= 0) {
        // The new numbers differ between the sides; only "a new fd" is compared.
        if (!s.core || Close(static_cast<int>(out->ret)).passthrough()) {
          close(static_cast<int>(out->ret));
        }
        out->ret = 0;
      }
      break;
    }
  }
}

void MakeSide(Side* s, int type) {
  using namespace gonet::core;
  if (socketpair(AF_UNIX, type, 0, s->sv) != 0 || pipe(s->pipe_fd) != 0) abort();
  if (s->core) NoteSocketPair(s->sv, AF_UNIX, type);
  timeval tv{0, 1000};
  for (int fd : s->sv) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (s->core) {
      SetSockOpt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SetSockOpt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
  }
}

void CloseSide(Side* s) {
  for (int fd : {s->sv[0], s->sv[1], s->pipe_fd[0], s->pipe_fd[1]}) {
    if (!s->core || gonet::core::Close(fd).passthrough()) close(fd);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);
  gonet::core::Config c;
  c.mode = gonet::core::RunMode::kThreads;
  const char* wait = getenv("FUZZ_OPS_WAIT");
  c.threads_wait_kernel = wait != nullptr && strcmp(wait, "kernel") == 0;
  gonet::core::InitForTest(c);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  static const int kTypes[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
  const int type = kTypes[in.U8() % 3];
  Side core_side{true, {}, {}}, libc_side{false, {}, {}};
  MakeSide(&core_side, type);
  MakeSide(&libc_side, type);
  static Call call;
  static Result a, b;
  for (int i = 0; i < kMaxCalls && in.n > 0; ++i) {
    call.op = in.U8();
    call.which_fd = in.U8();
    call.iovcnt = in.U8();
    static const int kFlagBits[] = {MSG_PEEK, MSG_WAITALL,      MSG_DONTWAIT, MSG_TRUNC,
                                    MSG_OOB,  MSG_CMSG_CLOEXEC, MSG_EOR,      MSG_MORE};
    const uint8_t fb = in.U8();
    call.flags = 0;
    for (int bit = 0; bit < 8; ++bit) {
      if (fb & (1 << bit)) call.flags |= kFlagBits[bit];
    }
    const uint8_t misc = in.U8();
    call.null_buf = (misc & 0x0f) == 0;
    call.use_name = misc & 0x10;
    call.use_control = misc & 0x20;
    call.level = (misc & 0x40) ? SOL_SOCKET : in.U8();
    call.name = in.U8() % 80;
    call.cmd = in.U8();
    call.len = in.U16() % (kMaxLen + 1);
    call.alen = in.U8();
    call.arg = in.U32();
    memset(call.data, in.U8(), sizeof call.data);
    Run(core_side, call, &a);
    Run(libc_side, call, &b);
    if (a.ret != b.ret || a.err != b.err || a.len1 != b.len1 || a.len2 != b.len2 ||
        a.msg_flags != b.msg_flags || memcmp(a.buf, b.buf, sizeof a.buf) != 0) {
      fprintf(stderr,
              "ops_fuzzer: core and libc disagree: op=%d fd#%d type=%d flags=%#x level=%d "
              "name=%d len=%zu alen=%u arg=%#x null=%d: core ret=%ld errno=%s, libc ret=%ld "
              "errno=%s (len1 %u/%u len2 %zu/%zu msg_flags %#x/%#x)\n",
              call.op % 6, call.which_fd % 6, type, call.flags, call.level, call.name, call.len,
              call.alen, call.arg, call.null_buf, a.ret, strerrorname_np(a.err), b.ret,
              strerrorname_np(b.err), a.len1, b.len1, a.len2, b.len2, a.msg_flags, b.msg_flags);
      abort();
    }
  }
  CloseSide(&core_side);
  CloseSide(&libc_side);
  if (gonet::core::Stats().invariant_failures.load() != 0) {
    fprintf(stderr, "ops_fuzzer: gonet counted an invariant failure\n");
    abort();
  }
  return 0;
}
