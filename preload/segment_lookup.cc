#include "preload/segment_lookup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/stats/stats_shm.h"

namespace gonet::cli {
namespace {

struct Mapping {
  std::string range;  // "start-end", as map_files names it
  uint64_t inode;
};

std::string ProcPath(long pid, const char* leaf) {
  return "/proc/" + std::to_string(pid) + "/" + leaf;
}

// pid's mappings of a gonet segment. Returns 0, or the errno of opening /proc/PID/maps.
int ReadSegmentMappings(long pid, std::vector<Mapping>* out) {
  FILE* f = fopen(ProcPath(pid, "maps").c_str(), "re");
  if (f == nullptr) return errno;
  const size_t link_len = strlen(core::kSegmentLink);
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    char range[64];
    char perms[8];
    unsigned long long inode = 0;
    int path_at = 0;
    if (sscanf(line, "%63s %7s %*x %*s %llu %n", range, perms, &inode, &path_at) < 3 ||
        path_at == 0 || perms[3] != 's') {
      continue;
    }
    if (strncmp(line + path_at, core::kSegmentLink, link_len) == 0 &&
        (line[path_at + link_len] == '\n' || line[path_at + link_len] == '\0')) {
      out->push_back({range, inode});
    }
  }
  fclose(f);
  return 0;
}

bool Mapped(const std::vector<Mapping>& maps, uint64_t inode) {
  return std::any_of(maps.begin(), maps.end(), [&](const Mapping& m) { return m.inode == inode; });
}

// A zombie has exited; only its exit status is left for its parent to collect.
bool IsZombie(long pid) {
  FILE* f = fopen(ProcPath(pid, "stat").c_str(), "re");
  if (f == nullptr) return false;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');  // the command name may hold anything but ends here
  return paren != nullptr && paren[1] == ' ' && paren[2] == 'Z';
}

bool IsPid(const char* s, long* pid) {
  if (*s == '\0') return false;
  char* end = nullptr;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v <= 0) return false;
  *pid = v;
  return true;
}

}  // namespace

SegmentLookup OpenProcessSegment(long pid, bool writable, SegmentHandle* out) {
  SegmentLookup r;
  struct stat st;
  if (stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0) {
    r.error = LookupError::kNoProcess;
    return r;
  }
  r.owner = st.st_uid;
  std::vector<Mapping> maps;
  if (int err = ReadSegmentMappings(pid, &maps)) {
    r.error = err == ENOENT || err == ESRCH ? LookupError::kNoProcess : LookupError::kDenied;
    r.err = err;
    return r;
  }
  if (maps.empty()) {
    r.error = IsZombie(pid) ? LookupError::kNoProcess : LookupError::kNotGonet;
    return r;
  }
  const int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  auto open_at = [&](const std::string& path) {
    int fd = open(path.c_str(), flags);
    if (fd < 0) {
      r.err = errno;
      return false;
    }
    struct stat s;
    if (fstat(fd, &s) != 0 || !Mapped(maps, s.st_ino)) {
      close(fd);
      return false;
    }
    out->fd = fd;
    out->inode = s.st_ino;
    out->via = path;
    return true;
  };
  std::string fd_dir = ProcPath(pid, "fd");
  DIR* d = opendir(fd_dir.c_str());
  if (d == nullptr) {
    r.error = errno == ENOENT ? LookupError::kNoProcess : LookupError::kDenied;
    r.err = errno;
    return r;
  }
  bool found = false;
  while (!found) {
    dirent* e = readdir(d);
    if (e == nullptr) break;
    std::string path = fd_dir + "/" + e->d_name;
    char link[sizeof core::kSegmentLink + 1];
    ssize_t n = readlink(path.c_str(), link, sizeof link);
    if (n != static_cast<ssize_t>(sizeof core::kSegmentLink - 1) ||
        memcmp(link, core::kSegmentLink, n) != 0) {
      continue;
    }
    found = open_at(path);
  }
  closedir(d);
  if (found) return r;
  // No fd holds it (closed by a raw syscall): the mapping itself, which only root may open.
  for (const Mapping& m : maps) {
    if (open_at(ProcPath(pid, "map_files/") + m.range)) return r;
  }
  r.error = r.err != 0 && r.err != EPERM ? LookupError::kOpenFailed : LookupError::kUnreachable;
  return r;
}

bool MapsSegment(long pid, uint64_t inode) {
  std::vector<Mapping> maps;
  return ReadSegmentMappings(pid, &maps) == 0 && Mapped(maps, inode);
}

std::vector<long> GonetProcesses() {
  std::vector<long> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  const bool root = geteuid() == 0;
  const long self = getpid();
  while (dirent* e = readdir(d)) {
    long pid = 0;
    if (!IsPid(e->d_name, &pid) || pid == self) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || (!root && st.st_uid != getuid())) continue;
    std::vector<Mapping> maps;
    if (ReadSegmentMappings(pid, &maps) == 0 && !maps.empty()) out.push_back(pid);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace gonet::cli
