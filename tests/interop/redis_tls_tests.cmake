# The Redis adapter over TLS (rediss://), against redis-server on a TLS port with a CA and certificates the
# tests make themselves (openssl, in a temp dir): redis_node, the wsio program and a Node socket.io server
# (test_redis_tls.mjs, classic and sharded); protected sentinels over TLS (test_redis_tls_sentinel.mjs);
# a Redis Cluster whose nodes speak TLS to each other and to clients (test_redis_tls_cluster.mjs).
find_program(OPENSSL_BIN openssl)
if(NODE_BIN AND REDIS_SERVER_BIN AND OPENSSL_BIN AND TARGET wsio)
  function(redis_tls_test name script mode)
    add_test(NAME interop/${name}
             COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/${script}
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    # PROGRAM_WSIO, not WSIO_*: the program reads every WSIO_* variable as a setting.
    set_tests_properties(interop/${name} PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
      "REDIS_NODE=$<TARGET_FILE:redis_node>;PROGRAM_WSIO=$<TARGET_FILE:wsio>;REDIS_SERVER=${REDIS_SERVER_BIN};REDIS_CLI=${REDIS_CLI_BIN};REDIS_MODE=${mode}")
  endfunction()
  redis_tls_test(redis_tls_classic test_redis_tls.mjs classic)
  redis_tls_test(redis_tls_sharded test_redis_tls.mjs sharded)
  redis_tls_test(redis_tls_sentinel test_redis_tls_sentinel.mjs classic)
  if(REDIS_CLI_BIN)
    redis_tls_test(redis_tls_cluster test_redis_tls_cluster.mjs sharded)
  endif()
endif()
