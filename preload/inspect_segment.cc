#include "preload/inspect_segment.h"

#include <pwd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/mode.h"
#include "preload/segment_lookup.h"

namespace gonet::cli {

using core::DumpArea;
using core::ShmHeader;

bool ParsePid(std::string_view s, long* pid) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pid = v;
  return v > 0;
}

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

const char* ModeName(int mode) { return core::ModeName(static_cast<core::RunMode>(mode)); }

std::string Seconds(int64_t ns) {
  char buf[32];
  if (ns < 0) ns = 0;
  if (ns < 1000000000) {
    snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  } else {
    snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

std::string UserName(uid_t uid) {
  passwd* pw = getpwuid(uid);
  return pw != nullptr ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

int ParsePidCommand(const char* cmd, cxxopts::Options* options, int argc, char** argv,
                    const char* usage, const char* help, long* pid, cxxopts::ParseResult* parsed) {
  options->add_options()("h,help", "")("pid", "", cxxopts::value<std::vector<std::string>>());
  options->parse_positional({"pid"});
  std::string name = std::string("gonet ") + cmd;
  std::vector<const char*> words = {name.c_str()};
  for (int i = 0; i < argc; ++i) words.push_back(argv[i]);
  try {
    *parsed = options->parse(static_cast<int>(words.size()), words.data());
  } catch (const cxxopts::exceptions::exception& e) {
    fprintf(stderr, "gonet %s: %s (usage: %s)\n", cmd, e.what(), usage);
    return kExitUsage;
  }
  if (parsed->count("help")) {
    fputs(help, stdout);
    return 0;
  }
  std::vector<std::string> pids = parsed->count("pid")
                                      ? (*parsed)["pid"].as<std::vector<std::string>>()
                                      : std::vector<std::string>{};
  if (pids.size() != 1 || !ParsePid(pids[0], pid)) {
    fprintf(stderr, "gonet %s: usage: %s\n", cmd, usage);
    return kExitUsage;
  }
  return -1;
}

Segment::~Segment() {
  if (mem != nullptr) munmap(mem, size);
  if (fd >= 0) close(fd);
}

const char* Segment::Name(uint32_t i) const {
  return static_cast<const char*>(mem) + header->names_offset + i * core::kShmCounterNameSize;
}

int64_t Segment::Counter(uint32_t i) const {
  auto* c = reinterpret_cast<const std::atomic<int64_t>*>(static_cast<const char*>(mem) +
                                                          header->counters_offset);
  return c[i].load(std::memory_order_relaxed);
}

DumpArea* Segment::Area() const {
  return reinterpret_cast<DumpArea*>(static_cast<char*>(mem) + header->dump_offset);
}

int OpenSegment(const char* cmd, long pid, bool writable, Segment* seg) {
  SegmentHandle found;
  SegmentLookup l = OpenProcessSegment(pid, writable, &found);
  switch (l.error) {
    case LookupError::kNone:
      break;
    case LookupError::kNoProcess:
      fprintf(stderr, "gonet %s: no process %ld (or it has exited)\n", cmd, pid);
      return kExitFailed;
    case LookupError::kNotGonet:
      fprintf(stderr,
              "gonet %s: process %ld does not run under gonet (it maps no %s; a program started "
              "with `gonet run` publishes its counters there)\n",
              cmd, pid, core::kSegmentLink);
      return kExitFailed;
    case LookupError::kDenied:
      fprintf(stderr,
              "gonet %s: process %ld belongs to %s; only its own user or root may inspect it "
              "(you are %s; /proc/%ld: %s)\n",
              cmd, pid, UserName(l.owner).c_str(), UserName(getuid()).c_str(), pid,
              strerror(l.err));
      return kExitFailed;
    case LookupError::kUnreachable:
      fprintf(stderr,
              "gonet %s: process %ld runs under gonet but closed gonet's fd behind its back (a raw "
              "close syscall); only root can still reach its segment, through "
              "/proc/%ld/map_files\n",
              cmd, pid, pid);
      return kExitFailed;
    case LookupError::kOpenFailed:
      fprintf(stderr, "gonet %s: cannot open process %ld's segment: %s\n", cmd, pid,
              strerror(l.err));
      return kExitFailed;
  }
  seg->fd = found.fd;
  seg->inode = found.inode;
  seg->path = found.via;
  struct stat st;
  if (fstat(seg->fd, &st) != 0) {
    fprintf(stderr, "gonet %s: cannot stat %s: %s\n", cmd, seg->path.c_str(), strerror(errno));
    return kExitFailed;
  }
  seg->size = static_cast<size_t>(st.st_size);
  if (seg->size < sizeof(ShmHeader)) {
    fprintf(stderr, "gonet %s: %s is too short to be a gonet segment\n", cmd, seg->path.c_str());
    return kExitFailed;
  }
  seg->mem = mmap(nullptr, seg->size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                  seg->fd, 0);
  if (seg->mem == MAP_FAILED) {
    seg->mem = nullptr;
    fprintf(stderr, "gonet %s: cannot map %s: %s\n", cmd, seg->path.c_str(), strerror(errno));
    return kExitFailed;
  }
  const auto* h = static_cast<const ShmHeader*>(seg->mem);
  bool ok = h->magic.load(std::memory_order_acquire) == core::kShmMagic &&
            h->version == core::kShmVersion && h->total_size <= seg->size &&
            h->names_offset + uint64_t{h->counter_count} * core::kShmCounterNameSize <= seg->size &&
            h->counters_offset + uint64_t{h->counter_count} * sizeof(int64_t) <= seg->size &&
            h->dump_offset + sizeof(DumpArea) <= seg->size;
  if (!ok) {
    fprintf(stderr, "gonet %s: %s has an unknown layout (version %u; this gonet reads %u)\n", cmd,
            seg->path.c_str(), h->version, core::kShmVersion);
    return kExitFailed;
  }
  seg->header = h;
  return 0;
}

}  // namespace gonet::cli
