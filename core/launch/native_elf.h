// What this build of gonet is, in ELF terms: the machine, class and byte order a program must
// have for libgonet.so to load into it (launch_check.h refuses the others; elf_file.h reports
// them).
#pragma once

#include <elf.h>

namespace gonet::core {

#if defined(__x86_64__)
inline constexpr int kNativeMachine = EM_X86_64;
#elif defined(__aarch64__)
inline constexpr int kNativeMachine = EM_AARCH64;
#elif defined(__i386__)
inline constexpr int kNativeMachine = EM_386;
#elif defined(__riscv)
inline constexpr int kNativeMachine = EM_RISCV;
#elif defined(__powerpc64__)
inline constexpr int kNativeMachine = EM_PPC64;
#elif defined(__s390x__)
inline constexpr int kNativeMachine = EM_S390;
#else
inline constexpr int kNativeMachine = EM_NONE;  // unknown: the machine is not compared
#endif
inline constexpr unsigned char kNativeClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
inline constexpr unsigned char kNativeData =
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;

}  // namespace gonet::core
