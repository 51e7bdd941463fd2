# `cmake --install build [--prefix P]`: libcnnc (one shared library holding every stage), its
# headers under include/cnnc, the cnnc command, and a CMake package so that another project's
# find_package(cnnc) gives the target cnnc::cnnc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(cnnc_library SHARED cmake/empty.cpp)
set_target_properties(cnnc_library PROPERTIES OUTPUT_NAME cnnc EXPORT_NAME cnnc
  # libHalide is found where the wheel keeps it, from the build tree and the install alike.
  INSTALL_RPATH "${Halide_DIR}/../.." BUILD_RPATH "${Halide_DIR}/../..")
target_link_libraries(cnnc_library
  PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,cnnc_frontend,cnnc_passes,cnnc_codegen,cnnc_runtime,cnnc_ir>"
  INTERFACE Threads::Threads)
target_include_directories(cnnc_library INTERFACE
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/cnnc>)

install(TARGETS cnnc_library EXPORT cnncTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS cnnc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The public headers: the IR, and each stage's entry point (Halide-free, as the stages' own
# contracts are).
foreach(header ir/activations.def ir/dot.h ir/error.h ir/graph.h ir/ops.def ir/ops.h
               ir/schedule.h ir/shape_inference.h ir/target.h ir/text.h ir/types.h
               frontend/load.h passes/pipeline.h passes/choose_tiles.h
               codegen/compile.h codegen/program.h codegen/winograd_transforms.h codegen/export.h
               runtime/executor.h runtime/weights.h runtime/npy.h)
  get_filename_component(folder ${header} DIRECTORY)
  install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cnnc/${folder})
endforeach()
install(EXPORT cnncTargets NAMESPACE cnnc:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cnnc)
configure_package_config_file(cmake/cnncConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/cnncConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cnnc)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cnncConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cnncConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/cnncConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cnnc)
# The installed command finds libHalide where the build did.
set_target_properties(cnnc PROPERTIES INSTALL_RPATH "${Halide_DIR}/../..")
