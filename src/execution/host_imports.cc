#include "execution/host_imports.h"

#include <array>

namespace moat {

namespace {
constexpr std::string_view W = kWasiModule;
constexpr std::array kImports = {
    HostImport{W, "args_get", "ii:i"},
    HostImport{W, "args_sizes_get", "ii:i"},
    HostImport{W, "environ_get", "ii:i"},
    HostImport{W, "environ_sizes_get", "ii:i"},
    HostImport{W, "clock_res_get", "ii:i"},
    HostImport{W, "clock_time_get", "iIi:i"},
    HostImport{W, "fd_advise", "iIIi:i"},
    HostImport{W, "fd_allocate", "iII:i"},
    HostImport{W, "fd_close", "i:i"},
    HostImport{W, "fd_datasync", "i:i"},
    HostImport{W, "fd_fdstat_get", "ii:i"},
    HostImport{W, "fd_fdstat_set_flags", "ii:i"},
    HostImport{W, "fd_fdstat_set_rights", "iII:i"},
    HostImport{W, "fd_filestat_get", "ii:i"},
    HostImport{W, "fd_filestat_set_size", "iI:i"},
    HostImport{W, "fd_filestat_set_times", "iIIi:i"},
    HostImport{W, "fd_pread", "iiiIi:i"},
    HostImport{W, "fd_prestat_get", "ii:i"},
    HostImport{W, "fd_prestat_dir_name", "iii:i"},
    HostImport{W, "fd_pwrite", "iiiIi:i"},
    HostImport{W, "fd_read", "iiii:i"},
    HostImport{W, "fd_readdir", "iiiIi:i"},
    HostImport{W, "fd_renumber", "ii:i"},
    HostImport{W, "fd_seek", "iIii:i"},
    HostImport{W, "fd_sync", "i:i"},
    HostImport{W, "fd_tell", "ii:i"},
    HostImport{W, "fd_write", "iiii:i"},
    HostImport{W, "path_create_directory", "iii:i"},
    HostImport{W, "path_filestat_get", "iiiii:i"},
    HostImport{W, "path_filestat_set_times", "iiiiIIi:i"},
    HostImport{W, "path_link", "iiiiiii:i"},
    HostImport{W, "path_open", "iiiiiIIii:i"},
    HostImport{W, "path_readlink", "iiiiii:i"},
    HostImport{W, "path_remove_directory", "iii:i"},
    HostImport{W, "path_rename", "iiiiii:i"},
    HostImport{W, "path_symlink", "iiiii:i"},
    HostImport{W, "path_unlink_file", "iii:i"},
    HostImport{W, "poll_oneoff", "iiii:i"},
    HostImport{W, "proc_exit", "i:"},
    HostImport{W, "proc_raise", "i:i"},
    HostImport{W, "sched_yield", ":i"},
    HostImport{W, "random_get", "ii:i"},
    HostImport{W, "sock_accept", "iii:i"},
    HostImport{W, "sock_recv", "iiiiii:i"},
    HostImport{W, "sock_send", "iiiii:i"},
    HostImport{W, "sock_shutdown", "ii:i"},
    // moat's own host API (moat_host.cc; guests/include/moat/http.h).
    HostImport{kMoatModule, "http_request", "ii:i"},
    HostImport{kMoatModule, "http_read", "iiiii:i"},
    HostImport{kMoatModule, "http_close", "i:i"},
    HostImport{kMoatModule, "http_error", "iii:i"},
};
}  // namespace

std::span<const HostImport> AllowedHostImports() { return kImports; }

const HostImport* FindHostImport(std::string_view module, std::string_view name) {
  for (const HostImport& h : kImports) {
    if (h.module == module && h.name == name) return &h;
  }
  return nullptr;
}

}  // namespace moat
