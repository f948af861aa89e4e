# Interop suites: real clients that no one here wrote, each against its own wsio process on a free port.
# One ctest case per client library, label "interop"; run them with `ctest -L interop`. They need the
# wsio program built and scripts/deps run (Debian's python3-websockets, tests/node_modules/ws).
#
# Debian's python3-websockets is importable only by /usr/bin/python3 (the python3 first on PATH may be
# another one), so that interpreter is named outright. A suite whose client is missing is skipped
# (exit 77), not passed.

set(WSIO_INTEROP_PYTHON /usr/bin/python3 CACHE FILEPATH "Python with Debian's python3-websockets")
find_program(WSIO_INTEROP_NODE node)

if(EXISTS ${WSIO_INTEROP_PYTHON})
  add_test(NAME interop/python
           COMMAND ${WSIO_INTEROP_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_ws_python.py $<TARGET_FILE:wsio>)
  set_tests_properties(interop/python PROPERTIES LABELS interop TIMEOUT 600 SKIP_RETURN_CODE 77)
endif()

if(WSIO_INTEROP_NODE)
  # node resolves `ws` from tests/node_modules, next to the test file's folder.
  add_test(NAME interop/node
           COMMAND ${CMAKE_COMMAND} -E env INTEROP_WSIO=$<TARGET_FILE:wsio>
                   ${WSIO_INTEROP_NODE} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_ws_node.mjs)
  set_tests_properties(interop/node PROPERTIES LABELS interop TIMEOUT 600)
endif()
