# cmake --install BUILD --prefix P puts in P:
#   include/mclip/*.h                    the public headers
#   lib/libmclip.so*                     the shared library (SONAME libmclip.so.MAJOR.MINOR)
#   lib/cmake/mclip/                     the CMake package: find_package(mclip) → mclip::mclip
#   lib/pkgconfig/mclip.pc               pkg-config --cflags --libs mclip
#   bin/mclip                            the command (when MCLIP_BUILD_TOOLS), finding the library
#                                        through its RPATH $ORIGIN/../lib
# Everything is relative to P, so an installed tree can be moved. Only the shared library is
# installed: its dependencies are its own (DT_NEEDED), so consumers need no Libs.private and no
# find_dependency.
include(CMakePackageConfigHelpers)

set(MCLIP_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mclip)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mclip DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(TARGETS mclip EXPORT mclipTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT mclipTargets NAMESPACE mclip:: DESTINATION ${MCLIP_CMAKE_PACKAGE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mclipConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mclipConfig.cmake INSTALL_DESTINATION ${MCLIP_CMAKE_PACKAGE_DIR})
# Before 1.0 a minor release may break the API, so only the same MAJOR.MINOR is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mclipConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mclipConfig.cmake ${PROJECT_BINARY_DIR}/mclipConfigVersion.cmake
        DESTINATION ${MCLIP_CMAKE_PACKAGE_DIR})

file(RELATIVE_PATH MCLIP_PC_PREFIX_FROM_PCFILEDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" MCLIP_PC_PREFIX_FROM_PCFILEDIR "${MCLIP_PC_PREFIX_FROM_PCFILEDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/mclip.pc.in ${PROJECT_BINARY_DIR}/mclip.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mclip.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(MCLIP_BUILD_TOOLS)
  file(RELATIVE_PATH MCLIP_LIB_FROM_BIN /prefix/${CMAKE_INSTALL_BINDIR} /prefix/${CMAKE_INSTALL_LIBDIR})
  set_target_properties(mclip_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${MCLIP_LIB_FROM_BIN}")
  install(TARGETS mclip_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
