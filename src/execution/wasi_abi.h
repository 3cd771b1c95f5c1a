// wasi_snapshot_preview1 constants: errno values, rights, flags and file types, as the
// specification numbers them (host code cannot include wasi-libc's <wasi/api.h>).
#pragma once

#include <cstdint>

namespace moat::wasi {

using Errno = uint16_t;

inline constexpr Errno kSuccess = 0;
inline constexpr Errno kE2big = 1;
inline constexpr Errno kEacces = 2;
inline constexpr Errno kEagain = 6;
inline constexpr Errno kEbadf = 8;
inline constexpr Errno kEbusy = 10;
inline constexpr Errno kEdquot = 19;
inline constexpr Errno kEexist = 20;
inline constexpr Errno kEfault = 21;
inline constexpr Errno kEfbig = 22;
inline constexpr Errno kEilseq = 25;
inline constexpr Errno kEintr = 27;
inline constexpr Errno kEinval = 28;
inline constexpr Errno kEio = 29;
inline constexpr Errno kEisdir = 31;
inline constexpr Errno kEloop = 32;
inline constexpr Errno kEmfile = 33;
inline constexpr Errno kEmlink = 34;
inline constexpr Errno kEnametoolong = 37;
inline constexpr Errno kEnfile = 41;
inline constexpr Errno kEnodev = 43;
inline constexpr Errno kEnoent = 44;
inline constexpr Errno kEnomem = 48;
inline constexpr Errno kEnospc = 51;
inline constexpr Errno kEnosys = 52;
inline constexpr Errno kEnotdir = 54;
inline constexpr Errno kEnotempty = 55;
inline constexpr Errno kEnotsock = 57;
inline constexpr Errno kEnotsup = 58;
inline constexpr Errno kEnotty = 59;
inline constexpr Errno kEnxio = 60;
inline constexpr Errno kEoverflow = 61;
inline constexpr Errno kEperm = 63;
inline constexpr Errno kEpipe = 64;
inline constexpr Errno kErofs = 69;
inline constexpr Errno kEspipe = 70;
inline constexpr Errno kEtxtbsy = 74;
inline constexpr Errno kExdev = 75;
inline constexpr Errno kEnotcapable = 76;

// Maps a host errno to the WASI one.
Errno FromHostErrno(int e);

inline constexpr uint8_t kFileTypeUnknown = 0;
inline constexpr uint8_t kFileTypeBlockDevice = 1;
inline constexpr uint8_t kFileTypeCharDevice = 2;
inline constexpr uint8_t kFileTypeDirectory = 3;
inline constexpr uint8_t kFileTypeRegular = 4;
inline constexpr uint8_t kFileTypeSocketDgram = 5;
inline constexpr uint8_t kFileTypeSocketStream = 6;
inline constexpr uint8_t kFileTypeSymlink = 7;

// Rights.
constexpr uint64_t kRightFdDatasync = 1ull << 0;
constexpr uint64_t kRightFdRead = 1ull << 1;
constexpr uint64_t kRightFdSeek = 1ull << 2;
constexpr uint64_t kRightFdFdstatSetFlags = 1ull << 3;
constexpr uint64_t kRightFdSync = 1ull << 4;
constexpr uint64_t kRightFdTell = 1ull << 5;
constexpr uint64_t kRightFdWrite = 1ull << 6;
constexpr uint64_t kRightFdAdvise = 1ull << 7;
constexpr uint64_t kRightFdAllocate = 1ull << 8;
constexpr uint64_t kRightPathCreateDirectory = 1ull << 9;
constexpr uint64_t kRightPathCreateFile = 1ull << 10;
constexpr uint64_t kRightPathLinkSource = 1ull << 11;
constexpr uint64_t kRightPathLinkTarget = 1ull << 12;
constexpr uint64_t kRightPathOpen = 1ull << 13;
constexpr uint64_t kRightFdReaddir = 1ull << 14;
constexpr uint64_t kRightPathReadlink = 1ull << 15;
constexpr uint64_t kRightPathRenameSource = 1ull << 16;
constexpr uint64_t kRightPathRenameTarget = 1ull << 17;
constexpr uint64_t kRightPathFilestatGet = 1ull << 18;
constexpr uint64_t kRightPathFilestatSetSize = 1ull << 19;
constexpr uint64_t kRightPathFilestatSetTimes = 1ull << 20;
constexpr uint64_t kRightFdFilestatGet = 1ull << 21;
constexpr uint64_t kRightFdFilestatSetSize = 1ull << 22;
constexpr uint64_t kRightFdFilestatSetTimes = 1ull << 23;
constexpr uint64_t kRightPathSymlink = 1ull << 24;
constexpr uint64_t kRightPathRemoveDirectory = 1ull << 25;
constexpr uint64_t kRightPathUnlinkFile = 1ull << 26;
constexpr uint64_t kRightPollFdReadwrite = 1ull << 27;
constexpr uint64_t kRightSockShutdown = 1ull << 28;
constexpr uint64_t kRightSockAccept = 1ull << 29;

constexpr uint64_t kFileRights =
    kRightFdDatasync | kRightFdRead | kRightFdSeek | kRightFdFdstatSetFlags | kRightFdSync |
    kRightFdTell | kRightFdWrite | kRightFdAdvise | kRightFdAllocate | kRightFdFilestatGet |
    kRightFdFilestatSetSize | kRightFdFilestatSetTimes | kRightPollFdReadwrite;
constexpr uint64_t kDirRights =
    kRightFdFdstatSetFlags | kRightFdSync | kRightFdAdvise | kRightPathCreateDirectory |
    kRightPathCreateFile | kRightPathLinkSource | kRightPathLinkTarget | kRightPathOpen |
    kRightFdReaddir | kRightPathReadlink | kRightPathRenameSource | kRightPathRenameTarget |
    kRightPathFilestatGet | kRightPathFilestatSetSize | kRightPathFilestatSetTimes |
    kRightFdFilestatGet | kRightFdFilestatSetTimes | kRightPathSymlink | kRightPathRemoveDirectory |
    kRightPathUnlinkFile;
constexpr uint64_t kStdioRights = kRightFdRead | kRightFdWrite | kRightFdFdstatSetFlags |
                                  kRightFdFilestatGet | kRightPollFdReadwrite;

// oflags, fdflags, lookupflags, fstflags, whence.
constexpr uint16_t kOflagCreat = 1, kOflagDirectory = 2, kOflagExcl = 4, kOflagTrunc = 8;
constexpr uint16_t kFdflagAppend = 1, kFdflagDsync = 2, kFdflagNonblock = 4, kFdflagRsync = 8,
                   kFdflagSync = 16;
constexpr uint32_t kLookupSymlinkFollow = 1;
constexpr uint16_t kFstAtim = 1, kFstAtimNow = 2, kFstMtim = 4, kFstMtimNow = 8;
constexpr uint8_t kWhenceSet = 0, kWhenceCur = 1, kWhenceEnd = 2;

}  // namespace moat::wasi
