# `make package`: Debian packages with CPack's DEB generator, one per install component (install.cmake).
#   wsio         the program, wsio(1), /etc/wsio/wsio.conf (a conffile), wsio.service, the client bundle
#   libwsio0     the shared library: what a program linked with -lwsio needs at run time
#   libwsio-dev  wsio.h, libwsio.so, libwsio.a, wsio.pc, the CMake package
# The split follows Debian policy 8.1 and 8.4: the run-time library sits alone in a package named after its
# soname, so programs built against it pull in neither headers nor a compiler's files, and a later
# libwsio1 can be installed beside libwsio0 while programs move over.
# Paths compiled into the program and the unit come from CMAKE_INSTALL_PREFIX: package a /usr build
# (`make package` configures one).
set(WSIO_PACKAGE_MAINTAINER "wsio maintainers <wsio@localhost>" CACHE STRING "Maintainer field of the .deb files")
set(WSIO_PACKAGE_RELEASE 1 CACHE STRING "Debian revision of the packages (the -N of VERSION-N)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wsio)
set(CPACK_PACKAGE_VENDOR wsio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL program runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${WSIO_PACKAGE_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${WSIO_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(_deb_version "${PROJECT_VERSION}-${WSIO_PACKAGE_RELEASE}")

# wsio: its Depends come from dpkg-shlibdeps on the binary (libuv1, libssl3, zlib1g, libjansson4,
# libhiredis0.14, libmsgpackc2, libcurl4, libc6); adduser for the system user made in postinst.
set(CPACK_DEBIAN_PROGRAM_PACKAGE_NAME wsio)
set(CPACK_DEBIAN_PROGRAM_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PROGRAM_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PROGRAM_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PROGRAM_DESCRIPTION
"realtime server: Socket.IO v5, Engine.IO v4 and RFC 6455 WebSocket
wsio serves the official socket.io clients unchanged (long-polling, WebSocket, namespaces, rooms, acks,
binary attachments, connection state recovery) and plain WebSocket clients, configured by a file:
routes, an HTTP publish API, JWT authentication, an event proxy, webhooks and Prometheus metrics.
It runs as the systemd unit wsio.service, as the unprivileged user wsio.")
set(WSIO_CONF_FILE ${CMAKE_INSTALL_FULL_SYSCONFDIR}/wsio/wsio.conf)
foreach(_script postinst prerm postrm conffiles)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/${_script}.in ${CMAKE_BINARY_DIR}/packaging/debian/${_script} @ONLY)
  file(CHMOD ${CMAKE_BINARY_DIR}/packaging/debian/${_script} FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
       GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  list(APPEND _program_control ${CMAKE_BINARY_DIR}/packaging/debian/${_script})
endforeach()
set(CPACK_DEBIAN_PROGRAM_PACKAGE_CONTROL_EXTRA "${_program_control}")

# libwsio0: Depends from dpkg-shlibdeps; a shlibs file so that programs linked with it depend on it.
set(WSIO_RUNTIME_PACKAGE libwsio${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${WSIO_RUNTIME_PACKAGE})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# (CPack has no per-component switch for it: only packages holding a shared library get a shlibs file.)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
"realtime server library: Socket.IO v5, Engine.IO v4, WebSocket (run time)
wsio is a C library for realtime servers: an RFC 6455 WebSocket engine with permessage-deflate and TLS,
and Engine.IO v4 and Socket.IO v5 compatible with the official clients.
This package holds the shared library.")

# libwsio-dev: the exact run-time library, and the -dev packages of the static library's dependencies
# (wsio.pc's Requires.private), found by asking dpkg which package owns each .pc file.
set(_dev_depends "${WSIO_RUNTIME_PACKAGE} (= ${_deb_version})")
find_program(WSIO_DPKG dpkg)
foreach(_module ${WSIO_PC_MODULES})
  set(_owner "")
  if(WSIO_DPKG AND PKG_CONFIG_EXECUTABLE)
    execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --variable=pcfiledir ${_module}
                    OUTPUT_VARIABLE _pcdir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc1)
    execute_process(COMMAND ${WSIO_DPKG} -S ${_pcdir}/${_module}.pc
                    OUTPUT_VARIABLE _owner OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc2 ERROR_QUIET)
    if(_rc1 EQUAL 0 AND _rc2 EQUAL 0 AND _owner MATCHES "^([^:, ]+)")
      set(_owner ${CMAKE_MATCH_1})
    else()
      set(_owner "")
    endif()
  endif()
  if(_owner)
    string(APPEND _dev_depends ", ${_owner}")
  else()
    message(STATUS "packaging: no Debian package owns ${_module}.pc; libwsio-dev will not depend on it")
  endif()
endforeach()
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libwsio-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_dev_depends}")
set(CPACK_DEBIAN_DEV_DESCRIPTION
"realtime server library: Socket.IO v5, Engine.IO v4, WebSocket (development)
wsio is a C library for realtime servers: an RFC 6455 WebSocket engine with permessage-deflate and TLS,
and Engine.IO v4 and Socket.IO v5 compatible with the official clients.
This package holds the header, the static library, pkg-config's wsio.pc and the CMake package
(find_package(wsio): wsio::wsio).")

include(CPack)
