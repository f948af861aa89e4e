# Abuse limits and cross-site protections of the wsio program, end to end: per-address connections (503),
# the handshake rate (429), the message rate (1008 / "io server disconnect", or drop), the WebSocket
# Origin check (403) and their metrics, with npm ws and socket.io-client (test_limits.mjs) and Debian's
# Python websockets (test_limits_python.py). Label "interop"; a missing client library skips (77).
find_program(WSIO_LIMITS_NODE node)
if(WSIO_LIMITS_NODE AND TARGET wsio)
  add_test(NAME interop/limits_node
           COMMAND ${WSIO_LIMITS_NODE} --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_limits.mjs
                   $<TARGET_FILE:wsio>)
  set_tests_properties(interop/limits_node PROPERTIES LABELS interop TIMEOUT 120 SKIP_RETURN_CODE 77)
  # Under the sanitizers freed memory stays in AddressSanitizer's quarantine: RSS bounds are not checked.
  if(WSIO_SANITIZE)
    set_property(TEST interop/limits_node APPEND PROPERTY ENVIRONMENT "SANITIZED_BUILD=1")
  endif()
endif()
# [server] trusted_proxies: limits and handshake.address follow X-Forwarded-For from a trusted peer only,
# long-polling through a proxy's connections, reload and bad lists (test_trusted_proxies.mjs).
if(WSIO_LIMITS_NODE AND TARGET wsio)
  add_test(NAME interop/trusted_proxies_node
           COMMAND ${WSIO_LIMITS_NODE} --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_trusted_proxies.mjs
                   $<TARGET_FILE:wsio>)
  set_tests_properties(interop/trusted_proxies_node PROPERTIES LABELS interop TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
set(WSIO_LIMITS_PYTHON /usr/bin/python3 CACHE FILEPATH "Python with Debian's python3-websockets")
if(EXISTS ${WSIO_LIMITS_PYTHON} AND TARGET wsio)
  add_test(NAME interop/limits_python
           COMMAND ${WSIO_LIMITS_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_limits_python.py $<TARGET_FILE:wsio>)
  set_tests_properties(interop/limits_python PROPERTIES LABELS interop TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
