# Socket.IO interop: official clients (npm socket.io-client, Debian python3-socketio, headless chromium
# loading the served socket.io.js) against sio_server, a test server built from the public API only.
add_executable(sio_server ${CMAKE_CURRENT_SOURCE_DIR}/sio_server.c ${CMAKE_CURRENT_SOURCE_DIR}/sio_server_use.c)
target_compile_options(sio_server PRIVATE ${WSIO_WARN})
target_compile_definitions(sio_server PRIVATE
  WSIO_CLIENT_DIR="${PROJECT_SOURCE_DIR}/tests/node_modules/socket.io-client/dist")
target_link_libraries(sio_server PRIVATE wsio_static)

set(SIO_CLIENT_DIR ${PROJECT_SOURCE_DIR}/tests/node_modules/socket.io-client/dist)
set(SIO_ENV SIO_SERVER=$<TARGET_FILE:sio_server> SIO_CLIENT_DIR=${SIO_CLIENT_DIR})

find_program(NODE_BIN node)

# interop/NAME: node --test SCRIPT (spec reporter) with the environment ENV, label interop.
function(sio_node_test name script timeout env)
  add_test(NAME interop/${name}
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/${script}
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/${name} PROPERTIES LABELS interop TIMEOUT ${timeout} ENVIRONMENT "${env}")
endfunction()
if(NODE_BIN)
  sio_node_test(sio_node test_sio_node.mjs 90 "${SIO_ENV}")
  # The same suite with socket.io-msgpack-parser on both ends (sio_server --parser msgpack).
  sio_node_test(sio_node_msgpack test_sio_node.mjs 90 "${SIO_ENV};SIO_PARSER=msgpack")
  sio_node_test(sio_browser test_sio_browser.mjs 90 "${SIO_ENV}")
endif()

# Debian's python3 (its packages are not on every python3 first on PATH).
add_test(NAME interop/sio_python
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_python.py
         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(interop/sio_python PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}"
                     SKIP_RETURN_CODE 77)
add_test(NAME interop/sio_python_msgpack
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_python.py
         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(interop/sio_python_msgpack PROPERTIES LABELS interop TIMEOUT 90
                     ENVIRONMENT "${SIO_ENV};SIO_PARSER=msgpack" SKIP_RETURN_CODE 77)

# The same suites against two workers (sio_server --workers 2): clients land on either thread, so
# broadcasts, rooms, acks and fetchSockets cross workers, and polling requests are handed to the worker
# that owns their session.
set(SIO_WORKERS_ENV SIO_SERVER=${CMAKE_CURRENT_SOURCE_DIR}/sio_server_workers.sh
    SIO_SERVER_BIN=$<TARGET_FILE:sio_server> SIO_CLIENT_DIR=${SIO_CLIENT_DIR} SIO_WORKERS=2)
if(NODE_BIN)
  sio_node_test(workers_polling test_workers_polling.mjs 90 "${SIO_ENV}")
  # The same over TLS (sio_server --tls-cert/--tls-key, a certificate made at run time): a request moves
  # with its socket and its TLS session, on new and on kept-alive connections, pipelined, and upgraded to
  # wss after a move. Skipped (77) without socket.io-client or the openssl program.
  add_test(NAME interop/workers_polling_tls
           COMMAND ${NODE_BIN} --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_workers_polling_tls.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/workers_polling_tls PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}"
                       SKIP_RETURN_CODE 77)
  sio_node_test(sio_node_workers test_sio_node.mjs 90 "${SIO_WORKERS_ENV}")
  # Broadcasts cross workers as text packets; each worker encodes them for its clients' parser.
  sio_node_test(sio_node_workers_msgpack test_sio_node.mjs 90 "${SIO_WORKERS_ENV};SIO_PARSER=msgpack")
endif()
add_test(NAME interop/sio_python_workers
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_python.py
         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(interop/sio_python_workers PROPERTIES LABELS interop TIMEOUT 90
                     ENVIRONMENT "${SIO_WORKERS_ENV}" SKIP_RETURN_CODE 77)

# socket.use and socket.on("error"), compared with Node socket.io; with the msgpack parser (kept events copy
# their binaries) and with two workers.
if(NODE_BIN)
  foreach(variant "" _msgpack _workers)
    set(env "${SIO_ENV}")
    if(variant STREQUAL "_msgpack")
      set(env "${SIO_ENV};SIO_PARSER=msgpack")
    elseif(variant STREQUAL "_workers")
      set(env "${SIO_WORKERS_ENV}")
    endif()
    sio_node_test(sio_use${variant} test_sio_use.mjs 90 "${env}")
  endforeach()
endif()

# initial_headers and headers (wsio_io_on_headers) on raw polling and WebSocket requests, compared with Node
# socket.io; with two workers too (a session's requests answered by whichever worker owns it).
if(NODE_BIN)
  sio_node_test(sio_headers test_sio_headers.mjs 60 "${SIO_ENV}")
  sio_node_test(sio_headers_workers test_sio_headers.mjs 60 "${SIO_WORKERS_ENV}")
endif()

# Connection state recovery with the npm client, one worker and two (a session saved on one worker is
# recovered on the other).
if(NODE_BIN)
  sio_node_test(sio_recovery test_sio_recovery.mjs 90 "${SIO_ENV}")
  sio_node_test(sio_recovery_msgpack test_sio_recovery.mjs 90 "${SIO_ENV};SIO_PARSER=msgpack")
endif()

# allowEIO3: npm socket.io-client 2.5.0 (Engine.IO v3) against sio_server --allow-eio3, beside
# socket.io-client 4 and Node's socket.io 4.8 with allowEIO3 for the subtle parts; then on two workers.
if(NODE_BIN)
  sio_node_test(sio_v2 test_sio_v2.mjs 90 "${SIO_ENV}")
  sio_node_test(sio_v2_workers test_sio_v2.mjs 90 "${SIO_WORKERS_ENV}")
endif()

# The Socket.IO Admin UI (wsio_io_instrument): its events compared with a Node server running instrument(),
# the actions, basic auth and readonly, hostile action arguments, and the dashboard's build in chromium;
# then the same with two workers, each of which reports as a server of its own.
if(NODE_BIN)
  sio_node_test(admin_ui test_admin_ui.mjs 120 "${SIO_ENV}")
  sio_node_test(admin_ui_workers test_admin_ui.mjs 120 "${SIO_WORKERS_ENV}")
endif()
