# Guests written in other languages that target wasm32-wasip1, built with their own
# toolchains, to show moat runs what those toolchains emit unmodified:
#   rust_std_probe.wasm  guests/rust/std_probe.rs, Debian's rustc (wasm32-wasi std from
#                        libstd-rust-dev-wasm32), linked with wasm-ld-16
#   as_probe.wasm        guests/assemblyscript/probe.ts, the npm AssemblyScript compiler
#                        and @assemblyscript/wasi-shim that scripts/fetch_third_party.sh
#                        puts in third_party/asc/
# scripts/setup.sh installs both; a missing one is a warning here and a skipped test in
# languages_test. Skipped in sanitizer builds, which run only the execution tests.
set(MOAT_HAVE_RUST_GUEST OFF)
set(MOAT_HAVE_AS_GUEST OFF)
if(MOAT_SANITIZE OR MOAT_TSAN)
  return()
endif()

# Debian's rustc only: a rustup toolchain elsewhere on PATH may lack the wasm32 target.
find_program(MOAT_RUSTC NAMES rustc PATHS /usr/bin NO_DEFAULT_PATH)
find_program(MOAT_WASM_LD NAMES wasm-ld-16)
if(MOAT_RUSTC AND MOAT_WASM_LD AND EXISTS /usr/lib/rustlib/wasm32-wasi)
  set(_out ${MOAT_GUEST_DIR}/rust_std_probe.wasm)
  add_custom_command(OUTPUT ${_out}
    COMMAND ${MOAT_RUSTC} --edition 2021 --target wasm32-wasi -O -C strip=debuginfo
            -C linker=${MOAT_WASM_LD} ${CMAKE_SOURCE_DIR}/guests/rust/std_probe.rs -o ${_out}
    DEPENDS ${CMAKE_SOURCE_DIR}/guests/rust/std_probe.rs
    COMMENT "guest rust_std_probe.wasm (rustc, wasm32-wasi)")
  add_custom_target(rust_guests ALL DEPENDS ${_out})
  set(MOAT_HAVE_RUST_GUEST ON)
else()
  message(WARNING "rustc with the wasm32-wasi standard library (Debian: rustc "
                  "libstd-rust-dev-wasm32) not found: the Rust guest is skipped")
endif()

set(_asc_root ${CMAKE_SOURCE_DIR}/third_party/asc/node_modules)
find_program(MOAT_NODE NAMES node nodejs)
if(MOAT_NODE AND EXISTS ${_asc_root}/assemblyscript/bin/asc.js
   AND EXISTS ${_asc_root}/@assemblyscript/wasi-shim/asconfig.json)
  set(_out ${MOAT_GUEST_DIR}/as_probe.wasm)
  add_custom_command(OUTPUT ${_out}
    # asc finds the shim's library folder only when --config is a relative path.
    COMMAND ${MOAT_NODE} ${_asc_root}/assemblyscript/bin/asc.js
            ${CMAKE_SOURCE_DIR}/guests/assemblyscript/probe.ts
            --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O2 -o ${_out}
    WORKING_DIRECTORY ${_asc_root}/..
    DEPENDS ${CMAKE_SOURCE_DIR}/guests/assemblyscript/probe.ts
    COMMENT "guest as_probe.wasm (AssemblyScript, wasi-shim)")
  add_custom_target(as_guests ALL DEPENDS ${_out})
  set(MOAT_HAVE_AS_GUEST ON)
else()
  message(WARNING "node or third_party/asc is missing: the AssemblyScript guest is skipped. "
                  "Run scripts/fetch_third_party.sh.")
endif()
