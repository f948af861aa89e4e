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
if(NODE_BIN)
  add_test(NAME interop/sio_node
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_node.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_node PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}")
  # The same suite with socket.io-msgpack-parser on both ends (sio_server --parser msgpack).
  add_test(NAME interop/sio_node_msgpack
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_node.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_node_msgpack PROPERTIES LABELS interop TIMEOUT 90
                       ENVIRONMENT "${SIO_ENV};SIO_PARSER=msgpack")
  add_test(NAME interop/sio_browser
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_browser.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_browser PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}")
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
  add_test(NAME interop/workers_polling
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_workers_polling.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/workers_polling PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}")
  # The same over TLS (sio_server --tls-cert/--tls-key, a certificate made at run time): a request moves
  # with its socket and its TLS session, on new and on kept-alive connections, pipelined, and upgraded to
  # wss after a move. Skipped (77) without socket.io-client or the openssl program.
  add_test(NAME interop/workers_polling_tls
           COMMAND ${NODE_BIN} --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_workers_polling_tls.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/workers_polling_tls PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}"
                       SKIP_RETURN_CODE 77)
  add_test(NAME interop/sio_node_workers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_node.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_node_workers PROPERTIES LABELS interop TIMEOUT 90
                       ENVIRONMENT "${SIO_WORKERS_ENV}")
  # Broadcasts cross workers as text packets; each worker encodes them for its clients' parser.
  add_test(NAME interop/sio_node_workers_msgpack
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_node.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_node_workers_msgpack PROPERTIES LABELS interop TIMEOUT 90
                       ENVIRONMENT "${SIO_WORKERS_ENV};SIO_PARSER=msgpack")
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
    add_test(NAME interop/sio_use${variant}
             COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_use.mjs
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/sio_use${variant} PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${env}")
  endforeach()
endif()

# initial_headers and headers (wsio_io_on_headers) on raw polling and WebSocket requests, compared with Node
# socket.io; with two workers too (a session's requests answered by whichever worker owns it).
if(NODE_BIN)
  add_test(NAME interop/sio_headers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_headers.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_headers PROPERTIES LABELS interop TIMEOUT 60 ENVIRONMENT "${SIO_ENV}")
  add_test(NAME interop/sio_headers_workers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_headers.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_headers_workers PROPERTIES LABELS interop TIMEOUT 60
                       ENVIRONMENT "${SIO_WORKERS_ENV}")
endif()

# Connection state recovery with the npm client, one worker and two (a session saved on one worker is
# recovered on the other).
if(NODE_BIN)
  add_test(NAME interop/sio_recovery
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_recovery.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_recovery PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}")
  add_test(NAME interop/sio_recovery_msgpack
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_recovery.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_recovery_msgpack PROPERTIES LABELS interop TIMEOUT 90
                       ENVIRONMENT "${SIO_ENV};SIO_PARSER=msgpack")
endif()

# allowEIO3: npm socket.io-client 2.5.0 (Engine.IO v3) against sio_server --allow-eio3, beside
# socket.io-client 4 and Node's socket.io 4.8 with allowEIO3 for the subtle parts; then on two workers.
if(NODE_BIN)
  add_test(NAME interop/sio_v2
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_v2.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_v2 PROPERTIES LABELS interop TIMEOUT 90 ENVIRONMENT "${SIO_ENV}")
  add_test(NAME interop/sio_v2_workers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_sio_v2.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/sio_v2_workers PROPERTIES LABELS interop TIMEOUT 90
                       ENVIRONMENT "${SIO_WORKERS_ENV}")
endif()

# The Socket.IO Admin UI (wsio_io_instrument): its events compared with a Node server running instrument(),
# the actions, basic auth and readonly, hostile action arguments, and the dashboard's build in chromium;
# then the same with two workers, each of which reports as a server of its own.
if(NODE_BIN)
  add_test(NAME interop/admin_ui
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_admin_ui.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/admin_ui PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT "${SIO_ENV}")
  add_test(NAME interop/admin_ui_workers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_admin_ui.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/admin_ui_workers PROPERTIES LABELS interop TIMEOUT 120
                       ENVIRONMENT "${SIO_WORKERS_ENV}")
endif()
