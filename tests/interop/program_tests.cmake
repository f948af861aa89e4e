# The wsio program end to end (tests/interop/test_program.mjs): configuration and its errors, routes, the
# HTTP API, JWT, metrics, reload on SIGHUP and the demo, through npm socket.io-client (tests/node_modules).
# One ctest case, label "interop"; skipped (77) when socket.io-client is not installed.
find_program(WSIO_PROGRAM_NODE node)
if(WSIO_PROGRAM_NODE AND TARGET wsio)
  add_test(NAME interop/program
           COMMAND ${WSIO_PROGRAM_NODE} --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_program.mjs
                   $<TARGET_FILE:wsio>)
  set_tests_properties(interop/program PROPERTIES LABELS interop TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()
