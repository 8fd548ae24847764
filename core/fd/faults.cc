#include "core/fd/faults.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/sys.h"
#include "core/fd/fd_table.h"
#include "core/poll/parker.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

constinit FaultInjector g_faults;

bool IsSocket(int fd) {
  if (FdEntry* e = FdTable::Find(fd)) {
    FdKind k = e->kind.load(std::memory_order_acquire);
    if (k == FdKind::kSocket) return true;
    if (k == FdKind::kNotSocket) return false;
  }
  struct stat st;
  return sys::Call(SYS_fstat, fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

uint16_t PortOf(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
}

FaultPorts PortsOf(int fd) {
  FaultPorts p;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (sys::Call(SYS_getsockname, fd, &ss, &len) == 0) p.local = PortOf(ss);
  len = sizeof ss;
  ss = {};
  if (sys::Call(SYS_getpeername, fd, &ss, &len) == 0) p.peer = PortOf(ss);
  return p;
}

void Complain(const char* what, const char* why) {
  char buf[700];
  int n = snprintf(buf, sizeof buf, "gonet: ignoring %s: %s\n", what, why);
  if (n > 0) sys::Call(SYS_write, 2, buf, static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1);
}

}  // namespace

FaultInjector& Faults() { return g_faults; }

IoResult InjectFault(FaultOp op, int fd, const sockaddr* peer) {
  if (GONET_LIKELY(!g_faults.enabled())) return IoResult::Ok(0);
  if (op != FaultOp::kSocket && !IsSocket(fd)) return IoResult::Ok(0);
  FaultPorts ports;
  if (op != FaultOp::kSocket && g_faults.WantsPorts(op)) {
    ports = PortsOf(fd);
    if (peer != nullptr) {
      sockaddr_storage ss{};
      memcpy(&ss, peer, peer->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
      ports.peer = PortOf(ss);
    }
  }
  FaultDecision d = g_faults.Decide(op, ports);
  if (d.none()) return IoResult::Ok(0);
  Count(Stats().faults_injected);
  if (d.delay_ns > 0) {
    ErrnoGuard keep;
    int64_t until = DeadlineAfter(d.delay_ns);
    Parker* p = CurrentParker();
    while (Nanotime() < until) p->Park(until, WaitKind::kRestartable);
  }
  return d.err != 0 ? IoResult::Err(d.err) : IoResult::Ok(0);
}

void ConfigureFaultsFromEnv() {
  const char* specs = getenv("GONET_FAULT");
  if (specs == nullptr || *specs == '\0') return;
  uint64_t seed = 0;
  if (const char* s = getenv("GONET_FAULT_SEED"); s != nullptr && *s != '\0') {
    ParseError e = ParseFaultSeed(s, &seed);
    if (e.failed()) {
      Complain("GONET_FAULT_SEED", e.message());
      seed = 0;
    }
  }
  ParseError e = g_faults.Configure(specs, seed);
  if (e.failed()) Complain("GONET_FAULT", e.message());
}

}  // namespace gonet::core
