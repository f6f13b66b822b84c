# Test discovery by convention (no edits here to add a test):
#   tests/<label>/<folder>_<name>.c  -> executable test_<folder>_<name>, linked with
#                                       llem_<folder>, CTest label <label>
#   tests/<label>/*.sh               -> run with bash; $LLEM is the llem binary
#   tests/fuzz/fuzz_<folder>_<name>.c -> a corpus replayer (label fuzz) that feeds every file in
#                                       tests/fuzz/corpus/<name>/ to LLVMFuzzerTestOneInput;
#                                       with -DLLEM_FUZZ=ON (clang) also a libFuzzer binary.
# Every test gets LLEM_SHARED (the ../shared folder, may be absent) and LLEM_SOURCE_DIR; a test
# that needs ../shared and does not find it exits 77, which CTest reports as skipped.
set(LLEM_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared)
# Programs under test keep prepared weights in the build tree, not in the user's cache.
set(LLEM_TEST_ENV "LLEM_SHARED=${LLEM_SHARED_DIR};LLEM_SOURCE_DIR=${CMAKE_SOURCE_DIR};LLEM=$<TARGET_FILE:llem>;LLEM_BUILD_DIR=${CMAKE_BINARY_DIR};LLEM_CACHE_DIR=${CMAKE_BINARY_DIR}/test-cache")
if(LLEM_SANITIZE)
    list(APPEND LLEM_TEST_ENV "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0"
                              "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

foreach(label unit golden robust backend e2e)
    file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${label}/*.c)
    foreach(src ${tests})
        get_filename_component(stem ${src} NAME_WE)
        string(REGEX REPLACE "_.*$" "" folder ${stem})
        set(exe test_${stem})
        add_executable(${exe} ${src})
        target_include_directories(${exe} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
        target_link_libraries(${exe} PRIVATE llem_${folder})
        if(label STREQUAL "golden" AND folder STREQUAL "sampler")
            target_link_libraries(${exe} PRIVATE llem_model) # grammar runs on a real model
        endif()
        if(stem STREQUAL "model_prepared")
            target_link_libraries(${exe} PRIVATE llem_synth) # generates its model
        endif()
        add_test(NAME ${label}/${stem} COMMAND ${exe})
        set_tests_properties(${label}/${stem} PROPERTIES LABELS ${label}
            SKIP_RETURN_CODE 77 ENVIRONMENT "${LLEM_TEST_ENV}"
            WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    endforeach()
    file(GLOB scripts CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${label}/*.sh)
    foreach(script ${scripts})
        get_filename_component(stem ${script} NAME_WE)
        add_test(NAME ${label}/${stem} COMMAND bash ${script})
        set_tests_properties(${label}/${stem} PROPERTIES LABELS ${label}
            SKIP_RETURN_CODE 77 ENVIRONMENT "${LLEM_TEST_ENV}"
            WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
        # Scripts that use the build tree's npm folder (e2e-node: one node_modules, and model
        # files and logs some of them share) never run at the same time under ctest -j.
        file(READ ${script} body)
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${script})
        string(FIND "${body}" "e2e-node" uses_npm_folder)
        if(uses_npm_folder GREATER -1)
            set_tests_properties(${label}/${stem} PROPERTIES RESOURCE_LOCK e2e-node)
        endif()
    endforeach()
endforeach()

file(GLOB fuzzers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${fuzzers})
    get_filename_component(stem ${src} NAME_WE)         # fuzz_<folder>_<name>
    string(REGEX REPLACE "^fuzz_" "" rest ${stem})
    string(REGEX REPLACE "_.*$" "" folder ${rest})
    string(REGEX REPLACE "^[^_]*_" "" corpus ${rest})
    add_executable(replay_${rest} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
    target_link_libraries(replay_${rest} PRIVATE llem_${folder})
    add_test(NAME fuzz/${rest}
             COMMAND replay_${rest} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${corpus})
    set_tests_properties(fuzz/${rest} PROPERTIES LABELS fuzz ENVIRONMENT "${LLEM_TEST_ENV}")
    if(LLEM_FUZZ)
        add_executable(fuzz_${rest} ${src})
        target_compile_options(fuzz_${rest} PRIVATE -fsanitize=fuzzer)
        target_link_options(fuzz_${rest} PRIVATE -fsanitize=fuzzer)
        target_link_libraries(fuzz_${rest} PRIVATE llem_${folder})
    endif()
endforeach()
