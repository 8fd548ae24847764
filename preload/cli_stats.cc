// `gonet stats`: a running program's counters, once, as JSON, or every INTERVAL with deltas; and
// without a PID, the caller's programs under gonet.
#include "preload/cli_stats.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "core/base/duration.h"
#include "preload/inspect_segment.h"
#include "preload/segment_lookup.h"

namespace gonet::cli {
namespace {

using core::ShmHeader;

// Prints the counters read into `now` (one read each); the deltas are against `previous`, the
// values the last report printed, so a change between two reports always shows in one of them.
void PrintStatsText(const Segment& seg, const std::vector<int64_t>& now,
                    const std::vector<int64_t>* previous) {
  const ShmHeader& h = *seg.header;
  printf("gonet stats: pid %d, mode %s, uptime %s\n", h.pid, ModeName(h.mode),
         Seconds(MonoNs() - h.start_mono_ns).c_str());
  for (uint32_t i = 0; i < h.counter_count; ++i) {
    int64_t v = now[i];
    if (previous != nullptr) {
      printf("  %-26s %lld  (%+lld)\n", seg.Name(i), static_cast<long long>(v),
             static_cast<long long>(v - (*previous)[i]));
    } else {
      printf("  %-26s %lld\n", seg.Name(i), static_cast<long long>(v));
    }
  }
  fflush(stdout);
}

void PrintStatsJson(const Segment& seg) {
  const ShmHeader& h = *seg.header;
  printf("{\"pid\": %d, \"mode\": \"%s\", \"uptime_s\": %.3f, \"counters\": {", h.pid,
         ModeName(h.mode), static_cast<double>(MonoNs() - h.start_mono_ns) / 1e9);
  for (uint32_t i = 0; i < h.counter_count; ++i) {
    // Counter names are C identifiers (stats.h): nothing to escape.
    printf("%s\"%s\": %lld", i ? ", " : "", seg.Name(i), static_cast<long long>(seg.Counter(i)));
  }
  printf("}}\n");
  fflush(stdout);
}

// `gonet stats` alone: the caller's gonet processes (root: everyone's), found in /proc. Nothing
// to sweep: a segment goes with its process.
int ListCommand() {
  struct Live {
    long pid;
    std::string mode, uptime, comm;
  };
  std::vector<Live> live;
  for (long pid : GonetProcesses()) {
    Live l{pid, "?", "?", ""};
    SegmentHandle found;
    if (OpenProcessSegment(pid, /*writable=*/false, &found).error == LookupError::kNone) {
      void* mem = mmap(nullptr, sizeof(ShmHeader), PROT_READ, MAP_SHARED, found.fd, 0);
      if (mem != MAP_FAILED) {
        const auto* h = static_cast<const ShmHeader*>(mem);
        if (h->magic.load(std::memory_order_acquire) == core::kShmMagic) {
          l.mode = ModeName(h->mode);
          l.uptime = Seconds(MonoNs() - h->start_mono_ns);
        }
        munmap(mem, sizeof(ShmHeader));
      }
      close(found.fd);
    }
    FILE* f = fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "r");
    if (f != nullptr) {
      char comm[64] = "";
      if (fgets(comm, sizeof comm, f) != nullptr) l.comm = comm;
      while (!l.comm.empty() && l.comm.back() == '\n') l.comm.pop_back();
      fclose(f);
    }
    live.push_back(l);
  }
  printf("%-8s %-12s %-12s %s\n", "PID", "MODE", "UPTIME", "COMMAND");
  for (const Live& l : live) {
    printf("%-8ld %-12s %-12s %s\n", l.pid, l.mode.c_str(), l.uptime.c_str(), l.comm.c_str());
  }
  return 0;
}

const char kStatsUsage[] =
    "usage: gonet stats PID [--json] [--watch INTERVAL]\n"
    "       gonet stats\n"
    "  print the gonet counters of a running program (its own user or root only); without PID,\n"
    "  list your programs running under gonet\n"
    "  --json             one JSON object: pid, mode, uptime_s, counters\n"
    "  --watch INTERVAL   print again every INTERVAL (e.g. 1s, 500ms) with deltas, until the\n"
    "                     program exits or Ctrl-C\n";

// The command line: [PID] [--json] [--watch INTERVAL]. Returns -1 to go on, or the exit status.
int ParseStatsArgs(int argc, char** argv, long* pid, bool* json, int64_t* watch_ns) {
  cxxopts::Options options("gonet stats");
  options.add_options()("json", "")("watch", "", cxxopts::value<std::string>());
  cxxopts::ParseResult parsed;
  int status =
      ParsePidCommand("stats", &options, argc, argv, "gonet stats PID [--json] [--watch INTERVAL]",
                      kStatsUsage, pid, &parsed);
  if (status >= 0) return status;
  *json = parsed.count("json") > 0;
  if (parsed.count("watch")) {
    std::string text = parsed["watch"].as<std::string>();
    core::DurationResult d = core::ParseDuration(text);
    if (!d.ok() || d.ns <= 0) {
      fprintf(stderr, "gonet stats: bad --watch interval \"%s\" (e.g. 1s, 500ms)\n", text.c_str());
      return kExitUsage;
    }
    *watch_ns = d.ns;
  }
  return -1;
}

}  // namespace

int StatsCommand(int argc, char** argv) {
  if (argc == 0) return ListCommand();
  long pid = 0;
  bool json = false;
  int64_t watch_ns = 0;
  if (int status = ParseStatsArgs(argc, argv, &pid, &json, &watch_ns); status >= 0) return status;
  Segment seg;
  if (int rc = OpenSegment("stats", pid, /*writable=*/false, &seg)) return rc;
  std::vector<int64_t> previous, now;
  for (bool first = true;; first = false) {
    if (json) {
      PrintStatsJson(seg);
    } else {
      now.resize(seg.header->counter_count);
      for (uint32_t i = 0; i < seg.header->counter_count; ++i) now[i] = seg.Counter(i);
      PrintStatsText(seg, now, first || watch_ns == 0 ? nullptr : &previous);
      // Not a second read: a counter that moved between a report's read and a later one would
      // vanish from every delta (ops.stats_watch_prints_deltas_until_program_exits timed out).
      previous.swap(now);
    }
    if (watch_ns == 0) return 0;
    timespec ts{static_cast<time_t>(watch_ns / 1000000000),
                static_cast<long>(watch_ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    // Our own fd keeps the segment readable after the program is gone: ask /proc instead.
    if (!MapsSegment(pid, seg.inode)) {
      fprintf(stderr, "gonet stats: process %ld exited\n", pid);
      return 0;
    }
    if (!json) printf("\n");
  }
}

}  // namespace gonet::cli
