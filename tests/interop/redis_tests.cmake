# Redis adapter interop: one redis-server (started by the test on a free port), two wsio nodes
# (redis_node, built from the public API) and one Node socket.io 4.8 server with @socket.io/redis-adapter,
# clients on each, plus @socket.io/redis-emitter; classic pub/sub, then sharded pub/sub (createShardedAdapter).
add_executable(redis_node ${CMAKE_CURRENT_SOURCE_DIR}/redis_node.c)
target_compile_options(redis_node PRIVATE ${WSIO_WARN})
target_link_libraries(redis_node PRIVATE wsio_static)

find_program(NODE_BIN node)
find_program(REDIS_SERVER_BIN redis-server)
find_program(REDIS_CLI_BIN redis-cli)
# interop/<prefix>_<mode> for each mode after env (classic and sharded when none are given): script run by
# node with REDIS_MODE set, plus the environment given.
function(redis_interop_tests prefix script env)
  set(modes ${ARGN})
  if(NOT modes)
    set(modes classic sharded)
  endif()
  foreach(mode ${modes})
    add_test(NAME interop/${prefix}_${mode}
             COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/${script}
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/${prefix}_${mode} PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
      "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN};${env}REDIS_MODE=${mode}")
  endforeach()
endfunction()

if(NODE_BIN AND REDIS_SERVER_BIN)
  redis_interop_tests(redis test_redis.mjs "" classic sharded streams)
endif()

# The streams mode's own matters (test_redis_streams.mjs): offsets, the entries' format, connection state
# recovery across wsio and Node nodes, trimming, malformed entries, Redis restarted; then the same with wsio
# nodes of two workers each, and the wsio program with --workers 2 in the cluster.
if(NODE_BIN AND REDIS_SERVER_BIN)
  add_test(NAME interop/redis_streams_recovery
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_redis_streams.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/redis_streams_recovery PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
    "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN}")
  add_test(NAME interop/redis_streams_workers
           COMMAND ${NODE_BIN} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_redis_streams.mjs
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(interop/redis_streams_workers PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
    "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN};STREAMS_WORKERS=2;STREAMS_PROGRAM=$<TARGET_FILE:wsio>")
endif()

# The same over a 3-primary Redis Cluster the test starts itself (test_redis_cluster.mjs): the Node server
# uses node-redis createCluster; sharded and classic; a slot in use is moved to another primary while running.
if(NODE_BIN AND REDIS_SERVER_BIN AND REDIS_CLI_BIN)
  redis_interop_tests(redis_cluster test_redis_cluster.mjs "REDIS_CLI=${REDIS_CLI_BIN};")
endif()

# A Redis Cluster that grows while the nodes run (test_redis_cluster_grow.mjs): two primaries no node has met
# join the 3-primary cluster, slots in use move onto them (messages and stream entries meet -MOVED/-ASK to
# them), then move back and the two leave; classic, sharded and streams.
if(NODE_BIN AND REDIS_SERVER_BIN AND REDIS_CLI_BIN)
  redis_interop_tests(redis_cluster_grow test_redis_cluster_grow.mjs "REDIS_CLI=${REDIS_CLI_BIN};"
                      classic sharded streams)
endif()

# Through Redis Sentinel (test_redis_sentinel.mjs): a master, a replica and three sentinels the test starts;
# the nodes get only the sentinels' addresses, and follow a failover.
if(NODE_BIN AND REDIS_SERVER_BIN)
  redis_interop_tests(redis_sentinel test_redis_sentinel.mjs "")
endif()

# The streams mode over other topologies (test_redis_streams_topologies.mjs, STREAMS_TOPOLOGY): a 3-primary
# Redis Cluster with a Node node on createCluster (a slot move and a failover of the stream's primary), Redis
# Sentinel (a failover mid-test), and streamCount 3 (namespaces on three streams) with a Node node.
if(NODE_BIN AND REDIS_SERVER_BIN AND REDIS_CLI_BIN)
  foreach(topology cluster sentinel count)
    add_test(NAME interop/redis_streams_${topology}
             COMMAND ${NODE_BIN} --test --test-reporter=spec
                     ${CMAKE_CURRENT_SOURCE_DIR}/test_redis_streams_topologies.mjs
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/redis_streams_${topology} PROPERTIES LABELS interop TIMEOUT 120 ENVIRONMENT
      "REDIS_NODE=$<TARGET_FILE:redis_node>;REDIS_SERVER=${REDIS_SERVER_BIN};REDIS_CLI=${REDIS_CLI_BIN};STREAMS_TOPOLOGY=${topology}")
  endforeach()
endif()
