# Browser interop (tests/interop/test_browser_chat.mjs): headless chromium, driven by playwright-core from
# tests/node_modules, against the wsio program. Two ctest cases, label "interop":
#   interop/browser_demo  the demo chat page wsio serves at / by default;
#   interop/browser_vue   examples/vue-chat, built into its dist/ when stale (npm ci first when its
#                         node_modules is missing), served by wsio with --web-root, and from Vite's dev server.
# Screenshots (browser_chat_*.png) are left in the build folder. Needs scripts/deps (chromium, npm packages).
find_program(WSIO_BROWSER_NODE node)
if(WSIO_BROWSER_NODE AND TARGET wsio)
  foreach(part demo vue)
    add_test(NAME interop/browser_${part}
             COMMAND ${WSIO_BROWSER_NODE} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/test_browser_chat.mjs
             WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(interop/browser_${part} PROPERTIES LABELS interop TIMEOUT 120
                         ENVIRONMENT "WSIO_BIN=$<TARGET_FILE:wsio>;BROWSER_CHAT=${part}")
  endforeach()
endif()
