# Benchmarks by convention: bench/<folder>_<name>.c -> executable bench_<folder>_<name> linked
# with llem_<folder>. Not tests: nothing here is run by CTest. Shell drivers (bench/*.sh) compare
# llem with a peer (llama.cpp) in the same script run.
file(GLOB benches CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/*.c)
foreach(src ${benches})
    get_filename_component(stem ${src} NAME_WE)
    string(REGEX REPLACE "_.*$" "" folder ${stem})
    add_executable(bench_${stem} ${src})
    target_include_directories(bench_${stem} PRIVATE ${CMAKE_SOURCE_DIR}/bench)
    target_link_libraries(bench_${stem} PRIVATE llem_${folder})
    if(folder STREQUAL "sampler")
        target_link_libraries(bench_${stem} PRIVATE llem_model) # decode speed with a grammar
    endif()
endforeach()
