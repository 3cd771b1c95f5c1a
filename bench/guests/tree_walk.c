// bench_wasi guest, also built natively: walks a directory tree with opendir/readdir and
// stats every entry, then prints the count of regular files, directories and bytes.
//   tree_walk DIR [fstatat|paths]
// fstatat: each entry is stat'ed relative to its open directory (fstatat(dirfd(d), name)),
//          subdirectories are opened with openat.
// paths:   each entry is stat'ed by its full path from DIR (stat(path)), subdirectories
//          are opened with opendir(path), as naive walkers do.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long files, dirs, bytes;

static int WalkAt(int dfd) {
  DIR* d = fdopendir(dfd);
  if (!d) return -1;
  struct dirent* de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
      ++dirs;
      int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (sub < 0 || WalkAt(sub) != 0) return -1;
    } else if (S_ISREG(st.st_mode)) {
      ++files;
      bytes += (unsigned long long)st.st_size;
    }
  }
  return closedir(d);
}

static int WalkPath(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return -1;
  struct dirent* de;
  char path[4096];
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
      ++dirs;
      if (WalkPath(path) != 0) return -1;
    } else if (S_ISREG(st.st_mode)) {
      ++files;
      bytes += (unsigned long long)st.st_size;
    }
  }
  return closedir(d);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tree_walk DIR [fstatat|paths]\n");
    return 2;
  }
  int r;
  if (argc > 2 && strcmp(argv[2], "paths") == 0) {
    r = WalkPath(argv[1]);
  } else {
    int fd = open(argv[1], O_RDONLY | O_DIRECTORY);
    r = fd < 0 ? -1 : WalkAt(fd);
  }
  if (r != 0) {
    perror("tree_walk");
    return 1;
  }
  printf("files=%llu dirs=%llu bytes=%llu\n", files, dirs, bytes);
  return 0;
}
