# Redis adapter interop: one redis-server (started by the test on a free port), two wsio nodes
# (redis_node, built from the public API) and one Node socket.io 4.8 server with @socket.io/redis-adapter,
# clients on each, plus @socket.io/redis-emitter; classic pub/sub, then sharded pub/sub (createShardedAdapter).
add_executable(redis_node ${CMAKE_CURRENT_SOURCE_DIR}/redis_node.c)
target_compile_options(redis_node PRIVATE ${WSIO_WARN})
target_link_libraries(redis_node PRIVATE wsio_static)

find_program(NODE_BIN node)
find_program(REDIS_SERVER_BIN redis-server)
find_program(REDIS_CLI_BIN redis-cli)
if(NODE_BIN AND REDIS_SERVER_BIN)
  foreach(mode classic sharded)
    add_test(NAME interop/redis_${mode}
             COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_redis.mjs
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/redis_${mode} PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
      "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN};REDIS_MODE=${mode}")
  endforeach()
endif()

# The same over a 3-primary Redis Cluster the test starts itself (test_redis_cluster.mjs): the Node server
# uses node-redis createCluster; sharded and classic; a slot in use is moved to another primary while running.
if(NODE_BIN AND REDIS_SERVER_BIN AND REDIS_CLI_BIN)
  foreach(mode classic sharded)
    add_test(NAME interop/redis_cluster_${mode}
             COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_redis_cluster.mjs
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/redis_cluster_${mode} PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
      "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN};REDIS_CLI=${REDIS_CLI_BIN};REDIS_MODE=${mode}")
  endforeach()
endif()
