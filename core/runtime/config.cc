#include "core/runtime/config.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/duration.h"
#include "core/base/sys.h"
#include "core/fd/faults.h"

namespace gonet::core {
namespace {

void Complain(const char* var, const char* why) {
  char buf[640];
  int n = snprintf(buf, sizeof buf, "gonet: ignoring %s: %s\n", var, why);
  if (n > 0) sys::Call(SYS_write, 2, buf, static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1);
}

void LoadDuration(const char* var, int64_t* out) {
  const char* text = getenv(var);
  if (text == nullptr || *text == '\0') return;
  DurationResult d = ParseDuration(text);
  if (!d.ok()) {
    Complain(var, d.error.message());
    return;
  }
  *out = d.ns;
}

}  // namespace

void LoadConfigFromEnv(Config* out) {
  Config c;
  if (const char* m = getenv("GONET_MODE"); m != nullptr && *m != '\0') {
    if (!ParseMode(m, &c.mode)) Complain("GONET_MODE", "expected threads, fibers or passthrough");
  }
  LoadDuration("GONET_READ_TIMEOUT", &c.read_timeout_ns);
  LoadDuration("GONET_WRITE_TIMEOUT", &c.write_timeout_ns);
  LoadDuration("GONET_CONNECT_TIMEOUT", &c.connect_timeout_ns);
  if (const char* s = getenv("GONET_STATS"); s != nullptr && *s != '\0' && strcmp(s, "0") != 0) {
    c.stats_at_exit = true;
  }
  if (const char* w = getenv("GONET_THREADS_WAIT"); w != nullptr && *w != '\0') {
    if (strcmp(w, "netpoller") == 0) {
      c.threads_wait_kernel = false;
    } else if (strcmp(w, "kernel") != 0) {
      Complain("GONET_THREADS_WAIT", "expected kernel or netpoller");
    }
  }
  if (const char* w = getenv("GONET_WORKERS"); w != nullptr && *w != '\0') {
    c.workers = atoi(w);
  }
  ConfigureFaultsFromEnv();
  *out = c;
}

}  // namespace gonet::core
