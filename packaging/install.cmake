# What `make install` and `make package` ship: the shared and static libraries, the header, pkg-config and
# CMake package files, the program with its man page, configuration, systemd unit and the socket.io client
# bundle. Included from the top-level CMakeLists.txt once wsio_static and wsio exist.
#
# Install components (one Debian package each, packaging/cpack.cmake):
#   runtime  libwsio.so.MAJOR.MINOR.PATCH and its soname link              -> libwsio0
#   dev      wsio.h, libwsio.so, libwsio.a, wsio.pc, lib/cmake/wsio        -> libwsio-dev
#   program  bin/wsio, wsio(1), etc/wsio/wsio.conf, wsio.service, bundle   -> wsio
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# ---- one version: project(VERSION) in CMakeLists.txt; wsio.h's WSIO_VERSION_* must say the same ----
file(STRINGS ${PROJECT_SOURCE_DIR}/include/wsio.h _wsio_version_lines REGEX "^#define WSIO_VERSION_(MAJOR|MINOR|PATCH) ")
foreach(_part MAJOR MINOR PATCH)
  set(_wsio_h_${_part} "")
  foreach(_line ${_wsio_version_lines})
    if(_line MATCHES "^#define WSIO_VERSION_${_part} +([0-9]+)")
      set(_wsio_h_${_part} ${CMAKE_MATCH_1})
    endif()
  endforeach()
  if(NOT "${_wsio_h_${_part}}" STREQUAL "${PROJECT_VERSION_${_part}}")
    message(FATAL_ERROR "include/wsio.h says WSIO_VERSION_${_part} ${_wsio_h_${_part}} but CMakeLists.txt's "
                        "project(VERSION) is ${PROJECT_VERSION}: bump both (docs/releasing.md)")
  endif()
endforeach()

set(WSIO_CLIENT_SUBDIR wsio/socket.io-client)
# The program finds the client bundle without configuration (src/server/main.c, find_client_dir): run from
# its build folder, the source tree's copy; installed, the bundle beside it (relative to bin/, so a
# relocated or staged tree uses its own), else the configured install location.
file(RELATIVE_PATH _client_rel ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_DATADIR}/${WSIO_CLIENT_SUBDIR})
target_compile_definitions(wsio PRIVATE WSIO_BUILD_DIR="$<TARGET_FILE_DIR:wsio>"
  WSIO_INSTALL_CLIENT_DIR_REL="${_client_rel}"
  WSIO_INSTALL_CLIENT_DIR="${CMAKE_INSTALL_FULL_DATADIR}/${WSIO_CLIENT_SUBDIR}")

# Sanitizer and fuzzer builds are for tests only: no shared library, nothing to install.
if(WSIO_SANITIZE OR WSIO_FUZZ)
  set(WSIO_PACKAGING OFF)
  return()
endif()
set(WSIO_PACKAGING ON)

# ---- the libraries ----
# The library's objects are compiled once (wsio_static, which the tests and the program link) with hidden
# visibility; WSIO_BUILDING turns WSIO_API into visibility("default"), so the shared library exports the
# public API and nothing else. llhttp is compiled in, hidden too.
set_target_properties(wsio_static llhttp PROPERTIES C_VISIBILITY_PRESET hidden)
target_compile_definitions(wsio_static PRIVATE WSIO_BUILDING)

# What the library links, from wsio_static's own list (so a dependency added there is packaged too):
# pkg-config modules (PkgConfig::X targets) become wsio.pc's Requires.private and what the CMake package
# looks up for wsio::wsio_static; Threads and libm become Libs.private; llhttp is compiled in.
get_target_property(_wsio_links wsio_static LINK_LIBRARIES)
set(WSIO_LINK_DEPS "")
set(WSIO_PC_MODULES "")
set(WSIO_CMAKE_DEPS "")
set(WSIO_PC_LIBS_PRIVATE "")
foreach(_lib ${_wsio_links})
  if(_lib STREQUAL "llhttp")
    continue()
  elseif(_lib MATCHES "^PkgConfig::(.+)$")
    set(_var ${CMAKE_MATCH_1})
    if(NOT ${_var}_MODULE_NAME)
      message(FATAL_ERROR "packaging: no pkg-config module name for ${_lib}")
    endif()
    list(APPEND WSIO_PC_MODULES ${${_var}_MODULE_NAME})
    list(APPEND WSIO_CMAKE_DEPS "${_var}=${${_var}_MODULE_NAME}")
  elseif(_lib STREQUAL "Threads::Threads")
    list(APPEND WSIO_PC_LIBS_PRIVATE -pthread)
  elseif(_lib MATCHES "^[a-z0-9_]+$" AND NOT TARGET ${_lib})
    list(APPEND WSIO_PC_LIBS_PRIVATE -l${_lib})
  else()
    message(FATAL_ERROR "packaging: wsio_static links ${_lib}; say in packaging/install.cmake how it is installed")
  endif()
  list(APPEND WSIO_LINK_DEPS ${_lib})
endforeach()
list(JOIN WSIO_PC_MODULES " " WSIO_PC_REQUIRES)
list(JOIN WSIO_PC_LIBS_PRIVATE " " WSIO_PC_LIBS_PRIVATE)

# Soname libwsio.so.MAJOR: within a major version the ABI only grows (docs/api.md, Compatibility).
add_library(wsio_shared SHARED $<TARGET_OBJECTS:wsio_static> $<TARGET_OBJECTS:llhttp>)
set_target_properties(wsio_shared PROPERTIES OUTPUT_NAME wsio EXPORT_NAME wsio
                      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(wsio_shared INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(wsio_shared PRIVATE ${WSIO_LINK_DEPS})
# Every symbol the library uses resolves at link time to one of its dependencies.
target_link_options(wsio_shared PRIVATE -Wl,--no-undefined -Wl,-z,relro -Wl,-z,now)

# The installed libwsio.a holds llhttp too, so users link one archive (wsio_static links libllhttp.a beside it).
add_library(wsio_dist_static STATIC $<TARGET_OBJECTS:wsio_static> $<TARGET_OBJECTS:llhttp>)
set_target_properties(wsio_dist_static PROPERTIES OUTPUT_NAME wsio EXPORT_NAME wsio_static
                      ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/dist)
target_include_directories(wsio_dist_static INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(wsio_dist_static PRIVATE ${WSIO_LINK_DEPS})

# ---- where things go ----
set(WSIO_CLIENT_SUBDIR wsio/socket.io-client)
set(WSIO_CLIENT_SOURCE ${PROJECT_SOURCE_DIR}/tests/node_modules/socket.io-client)
# /etc for a /usr prefix (GNUInstallDirs' rule), else inside the prefix so `cmake --install --prefix` holds.
if(CMAKE_INSTALL_FULL_SYSCONFDIR STREQUAL "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}")
  set(WSIO_ETC_DEST ${CMAKE_INSTALL_SYSCONFDIR}/wsio)
else()
  set(WSIO_ETC_DEST ${CMAKE_INSTALL_FULL_SYSCONFDIR}/wsio)
endif()
set(WSIO_CMAKE_DEST ${CMAKE_INSTALL_LIBDIR}/cmake/wsio)

# ---- install rules ----
install(TARGETS wsio_shared EXPORT wsioTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS wsio_dist_static EXPORT wsioStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
# A stripped install (the packages) keeps the archive's symbols and drops its debug sections, as Debian does.
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
    \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:wsio_dist_static>\")
endif()" COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/include/wsio.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# pkg-config: relocatable (${pcfiledir}) unless installed under /usr, where absolute paths are the rule.
file(RELATIVE_PATH _pc_up ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(WSIO_PC_PREFIX /usr)
else()
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(WSIO_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/wsio.pc.in ${CMAKE_BINARY_DIR}/packaging/wsio.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/wsio.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# CMake: find_package(wsio) gives wsio::wsio (shared) and, when its dependencies are found, wsio::wsio_static.
install(EXPORT wsioTargets NAMESPACE wsio:: DESTINATION ${WSIO_CMAKE_DEST} COMPONENT dev)
install(EXPORT wsioStaticTargets NAMESPACE wsio:: DESTINATION ${WSIO_CMAKE_DEST} COMPONENT dev)
set(WSIO_CLIENT_DIR_INSTALL ${CMAKE_INSTALL_DATADIR}/${WSIO_CLIENT_SUBDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/wsioConfig.cmake.in
  ${CMAKE_BINARY_DIR}/packaging/wsioConfig.cmake INSTALL_DESTINATION ${WSIO_CMAKE_DEST}
  PATH_VARS WSIO_CLIENT_DIR_INSTALL)
# Same major version: the ABI promise of docs/api.md.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/packaging/wsioConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/packaging/wsioConfig.cmake ${CMAKE_BINARY_DIR}/packaging/wsioConfigVersion.cmake
        DESTINATION ${WSIO_CMAKE_DEST} COMPONENT dev)

# The program: binary, man page, configuration, unit, client bundle, docs.
install(TARGETS wsio RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT program)
# Compressed, as Debian wants man pages (gzip -n: no name or time stamp, the same bytes every build).
find_program(WSIO_GZIP gzip REQUIRED)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/packaging/wsio.1.gz
  COMMAND ${WSIO_GZIP} -9n -c ${PROJECT_SOURCE_DIR}/man/wsio.1 > ${CMAKE_BINARY_DIR}/packaging/wsio.1.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/man/wsio.1 VERBATIM)
# The upstream changelog of every package, compressed the same way.
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/packaging/changelog.gz
  COMMAND ${WSIO_GZIP} -9n -c ${PROJECT_SOURCE_DIR}/CHANGELOG.md > ${CMAKE_BINARY_DIR}/packaging/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/CHANGELOG.md VERBATIM)
add_custom_target(wsio_man_page ALL DEPENDS ${CMAKE_BINARY_DIR}/packaging/wsio.1.gz
                  ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${CMAKE_BINARY_DIR}/packaging/wsio.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT program)
# The installed configuration is the example with the listener on loopback: a fresh install is reached
# through a reverse proxy (docs/operations.md) until its administrator decides otherwise.
file(READ ${PROJECT_SOURCE_DIR}/wsio.conf.example _conf)
string(REGEX REPLACE "\nhost = 0\\.0\\.0\\.0 [^\n]*\n"
       "\nhost = 127.0.0.1                # address to listen on: IPv4, IPv6 or a name (0.0.0.0: every interface)\n"
       _conf_installed "${_conf}")
if(_conf_installed STREQUAL _conf)
  message(FATAL_ERROR "packaging: wsio.conf.example has no \"host = 0.0.0.0\" line to turn into loopback")
endif()
file(WRITE ${CMAKE_BINARY_DIR}/packaging/wsio.conf.new "${_conf_installed}")
configure_file(${CMAKE_BINARY_DIR}/packaging/wsio.conf.new ${CMAKE_BINARY_DIR}/packaging/wsio.conf COPYONLY)
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/wsio.conf.example)
# An existing configuration is the administrator's: kept, with the new default beside it as wsio.conf.default.
# (Packages get a fresh staging folder, so they always hold wsio.conf; dpkg handles conffile updates.)
if(IS_ABSOLUTE ${WSIO_ETC_DEST})
  set(_etc_dir ${WSIO_ETC_DEST})
else()
  set(_etc_dir "\${CMAKE_INSTALL_PREFIX}/${WSIO_ETC_DEST}")
endif()
install(CODE "
  set(_name wsio.conf)
  if(EXISTS \"\$ENV{DESTDIR}${_etc_dir}/wsio.conf\")
    set(_name wsio.conf.default)
    message(STATUS \"Keeping \$ENV{DESTDIR}${_etc_dir}/wsio.conf: the new default goes beside it as \${_name}\")
  endif()
  file(INSTALL DESTINATION \"${_etc_dir}\" TYPE FILE RENAME \${_name}
       FILES \"${CMAKE_BINARY_DIR}/packaging/wsio.conf\")" COMPONENT program)
install(FILES ${PROJECT_SOURCE_DIR}/wsio.conf.example ${PROJECT_SOURCE_DIR}/README.md
        ${PROJECT_SOURCE_DIR}/docs/wsio.md ${PROJECT_SOURCE_DIR}/docs/operations.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/wsio COMPONENT program)
configure_file(${CMAKE_CURRENT_LIST_DIR}/wsio.service.in ${CMAKE_BINARY_DIR}/packaging/wsio.service @ONLY)
# Debian 12 ships units in /lib/systemd/system; other prefixes keep theirs inside.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(WSIO_UNIT_DEST /lib/systemd/system)
else()
  set(WSIO_UNIT_DEST lib/systemd/system)
endif()
install(FILES ${CMAKE_BINARY_DIR}/packaging/wsio.service DESTINATION ${WSIO_UNIT_DEST} COMPONENT program)
if(EXISTS ${WSIO_CLIENT_SOURCE}/dist/socket.io.js)
  install(DIRECTORY ${WSIO_CLIENT_SOURCE}/dist/ DESTINATION ${CMAKE_INSTALL_DATADIR}/${WSIO_CLIENT_SUBDIR}
          COMPONENT program FILES_MATCHING PATTERN "socket.io*")
  install(FILES ${WSIO_CLIENT_SOURCE}/LICENSE ${WSIO_CLIENT_SOURCE}/package.json
          DESTINATION ${CMAKE_INSTALL_DATADIR}/${WSIO_CLIENT_SUBDIR} COMPONENT program)
else()
  message(WARNING "packaging: ${WSIO_CLIENT_SOURCE}/dist is missing (run scripts/deps): the socket.io client "
                  "bundle will not be installed")
endif()
# Debian's copyright file and upstream changelog of each package.
foreach(_pkg wsio libwsio0 libwsio-dev)
  set(_comp program)
  if(_pkg STREQUAL "libwsio0")
    set(_comp runtime)
  elseif(_pkg STREQUAL "libwsio-dev")
    set(_comp dev)
  endif()
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_pkg} RENAME copyright
          COMPONENT ${_comp})
  install(FILES ${CMAKE_BINARY_DIR}/packaging/changelog.gz DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_pkg}
          COMPONENT ${_comp})
endforeach()

include(${CMAKE_CURRENT_LIST_DIR}/cpack.cmake)
