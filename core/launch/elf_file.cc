#include "core/launch/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/launch/native_elf.h"

namespace gonet::core {
namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);
using Shdr = ElfW(Shdr);
using Sym = ElfW(Sym);
using Dyn = ElfW(Dyn);

// A table larger than this is not an ELF file anyone links against; refuse instead of
// allocating whatever a corrupt header claims.
constexpr uint64_t kMaxTableBytes = uint64_t{256} << 20;

bool ReadAt(int fd, void* buf, size_t size, uint64_t offset) {
  char* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool ReadBlob(int fd, uint64_t offset, uint64_t size, std::string* out) {
  if (size > kMaxTableBytes) return false;
  out->resize(size);
  return size == 0 || ReadAt(fd, out->data(), size, offset);
}

// The NUL-terminated string at `offset` of a string table, or "" past its end.
std::string StringAt(const std::string& table, uint64_t offset) {
  if (offset >= table.size()) return {};
  const char* s = table.data() + offset;
  return std::string(s, strnlen(s, table.size() - offset));
}

void SplitPath(const std::string& list, std::vector<std::string>* out) {
  size_t start = 0;
  for (;;) {
    size_t colon = list.find(':', start);
    std::string entry = list.substr(start, colon - start);
    if (!entry.empty()) out->push_back(entry);
    if (colon == std::string::npos) return;
    start = colon + 1;
  }
}

bool ReadSections(int fd, const Ehdr& eh, ElfFile* elf) {
  if (eh.e_shoff == 0 || eh.e_shnum == 0) {
    elf->error = "it has no section headers (stripped with sstrip?): its imports cannot be read";
    return false;
  }
  if (eh.e_shentsize != sizeof(Shdr)) {
    elf->error = "unexpected ELF section header size";
    return false;
  }
  std::vector<Shdr> sections(eh.e_shnum);
  if (!ReadAt(fd, sections.data(), sections.size() * sizeof(Shdr), eh.e_shoff)) {
    elf->error = "truncated ELF section headers";
    return false;
  }
  for (const Shdr& sh : sections) {
    if (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_DYNAMIC) continue;
    if (sh.sh_link >= sections.size()) continue;
    const Shdr& strtab_header = sections[sh.sh_link];
    std::string strtab, table;
    if (!ReadBlob(fd, strtab_header.sh_offset, strtab_header.sh_size, &strtab) ||
        !ReadBlob(fd, sh.sh_offset, sh.sh_size, &table)) {
      elf->error = "truncated dynamic section or symbol table";
      return false;
    }
    if (sh.sh_type == SHT_DYNSYM) {
      size_t count = table.size() / sizeof(Sym);
      for (size_t i = 1; i < count; ++i) {  // entry 0 is the reserved null symbol
        Sym sym;
        memcpy(&sym, table.data() + i * sizeof(Sym), sizeof sym);
        if (sym.st_shndx != SHN_UNDEF || ELF64_ST_BIND(sym.st_info) == STB_LOCAL) continue;
        std::string name = StringAt(strtab, sym.st_name);
        if (!name.empty()) elf->imports.push_back(std::move(name));
      }
      continue;
    }
    size_t count = table.size() / sizeof(Dyn);
    for (size_t i = 0; i < count; ++i) {
      Dyn dyn;
      memcpy(&dyn, table.data() + i * sizeof(Dyn), sizeof dyn);
      if (dyn.d_tag == DT_NULL) break;
      switch (dyn.d_tag) {
        case DT_NEEDED:
          elf->needed.push_back(StringAt(strtab, dyn.d_un.d_val));
          break;
        case DT_RPATH:
          SplitPath(StringAt(strtab, dyn.d_un.d_val), &elf->rpath);
          break;
        case DT_RUNPATH:
          SplitPath(StringAt(strtab, dyn.d_un.d_val), &elf->runpath);
          break;
        case DT_SONAME:
          elf->soname = StringAt(strtab, dyn.d_un.d_val);
          break;
        default:
          break;
      }
    }
  }
  return true;
}

}  // namespace

ElfFile ReadElfFile(const std::string& path) {
  ElfFile elf;
  elf.path = path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    elf.error = strerror(errno);
    return elf;
  }
  Ehdr eh;
  unsigned char ident[EI_NIDENT] = {};
  if (!ReadAt(fd, ident, sizeof ident, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0) {
    close(fd);
    return elf;  // not ELF: a script, or data
  }
  elf.is_elf = true;
  if (ident[EI_CLASS] != kNativeClass || ident[EI_DATA] != kNativeData) {
    elf.error = "it is an ELF file of another class or byte order than gonet";
    close(fd);
    return elf;
  }
  if (!ReadAt(fd, &eh, sizeof eh, 0)) {
    elf.error = "truncated ELF header";
    close(fd);
    return elf;
  }
  elf.native = kNativeMachine == EM_NONE || eh.e_machine == kNativeMachine;
  if (!elf.native) {
    elf.error =
        "it is built for another machine (ELF e_machine " + std::to_string(eh.e_machine) + ")";
    close(fd);
    return elf;
  }
  if (eh.e_phentsize != sizeof(Phdr)) {
    elf.error = "unexpected ELF program header size";
    close(fd);
    return elf;
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (!ReadAt(fd, &ph, sizeof ph, eh.e_phoff + uint64_t{i} * sizeof(Phdr))) {
      elf.error = "truncated ELF program headers";
      close(fd);
      return elf;
    }
    if (ph.p_type == PT_TLS) elf.tls_bytes = ph.p_memsz;
    if (ph.p_type == PT_INTERP && ph.p_filesz > 0 && ph.p_filesz < 4096) {
      std::string interp;
      if (ReadBlob(fd, ph.p_offset, ph.p_filesz, &interp)) {
        elf.interpreter = std::string(interp.c_str());
      }
    }
  }
  ReadSections(fd, eh, &elf);
  close(fd);
  return elf;
}

std::string ExpandOrigin(const std::string& entry, const std::string& object_path) {
  size_t slash = object_path.rfind('/');
  std::string origin = slash == std::string::npos ? "." : object_path.substr(0, slash);
  if (origin.empty()) origin = "/";
  std::string out;
  for (size_t i = 0; i < entry.size();) {
    if (entry.compare(i, 9, "${ORIGIN}") == 0) {
      out += origin;
      i += 9;
    } else if (entry.compare(i, 7, "$ORIGIN") == 0) {
      out += origin;
      i += 7;
    } else {
      out += entry[i++];
    }
  }
  return out;
}

}  // namespace gonet::core
