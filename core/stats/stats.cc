#include "core/stats/stats.h"

#include <cstdio>
#include <cstring>

#include "core/base/base.h"

namespace gonet::core {
namespace {
Counters g_static_block;
}  // namespace
namespace internal {
std::atomic<Counters*> g_stats_block{&g_static_block};
}  // namespace internal
using internal::g_stats_block;

void SetStatsBlock(Counters* block) {
  g_stats_block.store(block ? block : &g_static_block, std::memory_order_release);
}

size_t FormatStats(const Counters& c, char* buf, size_t cap) {
  if (cap == 0) return 0;
  size_t len = 0;
  auto line = [&](const char* name, int64_t value) {
    char tmp[96];
    int w = snprintf(tmp, sizeof tmp, "  %-26s %lld\n", name, static_cast<long long>(value));
    if (w <= 0) return;
    size_t n = static_cast<size_t>(w) < sizeof tmp ? static_cast<size_t>(w) : sizeof tmp - 1;
    if (len + n >= cap) return;
    memcpy(buf + len, tmp, n);
    len += n;
  };
#define GONET_FORMAT_COUNTER(name, help) line(#name, c.name.load(std::memory_order_relaxed));
  GONET_STATS_COUNTERS(GONET_FORMAT_COUNTER)
#undef GONET_FORMAT_COUNTER
  buf[len] = '\0';
  return len;
}

void NoteInvariantFailure(const char* what, const char* file, int line) {
#ifndef NDEBUG
  fprintf(stderr, "gonet: invariant broken: %s (%s:%d)\n", what, file, line);
  __builtin_trap();
#else
  (void)what;
  (void)file;
  (void)line;
  Count(Stats().invariant_failures);
#endif
}

}  // namespace gonet::core
