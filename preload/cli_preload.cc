#include "preload/cli_preload.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#ifndef GONET_INSTALL_LIBDIR
#define GONET_INSTALL_LIBDIR "lib/gonet"
#endif

namespace gonet::cli {
namespace {

constexpr std::string_view kLibraryName = "libgonet.so";

// ExecutableDir is the directory of the running gonet binary, symlinks resolved, so that a
// symlink in /usr/local/bin still finds the library next to the real file.
std::string ExecutableDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool Readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

LibraryLookup Absolute(const std::string& path, const char* source) {
  LibraryLookup r;
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) == nullptr) {
    r.error = std::string(source) + " " + path + ": " + strerror(errno);
    return r;
  }
  r.path = real;
  // The loader splits LD_PRELOAD on these; such a path cannot be preloaded at all.
  if (r.path.find_first_of(": \t") != std::string::npos) {
    r.error = "cannot preload " + r.path + ": LD_PRELOAD paths may not contain ':' or blanks";
  }
  return r;
}

}  // namespace

LibraryLookup FindLibrary(const char* explicit_path, const char* env_path) {
  if (explicit_path != nullptr && *explicit_path != '\0') return Absolute(explicit_path, "--lib");
  if (env_path != nullptr && *env_path != '\0') return Absolute(env_path, "GONET_LIB");
  std::string dir = ExecutableDir();
  std::string candidates[] = {
      dir + "/" + std::string(kLibraryName),
      dir + "/../" GONET_INSTALL_LIBDIR "/" + std::string(kLibraryName),
      dir + "/../lib/gonet/" + std::string(kLibraryName),
  };
  for (const std::string& c : candidates) {
    if (Readable(c)) return Absolute(c, "library");
  }
  LibraryLookup r;
  r.error = "cannot find libgonet.so (looked in " + candidates[0] + ", " + candidates[1] + " and " +
            candidates[2] + "); build it (make build) or give --lib PATH or GONET_LIB";
  return r;
}

std::string PrependPreload(const std::string& library, const char* existing) {
  std::string result = library;
  std::string_view rest = existing != nullptr ? existing : "";
  while (!rest.empty()) {
    size_t end = rest.find_first_of(": \t");
    std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (entry.empty()) continue;
    size_t slash = entry.rfind('/');
    std::string_view base = slash == std::string_view::npos ? entry : entry.substr(slash + 1);
    if (base == kLibraryName || entry == library) continue;
    result += ':';
    result += entry;
  }
  return result;
}

}  // namespace gonet::cli
