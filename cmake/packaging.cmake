# SPDX-License-Identifier: MIT
# Debian packages: `cpack -G DEB` in a build directory (after the build)
# writes one package per install component:
#
#   component  package                 contents
#   runtime    librill<SOVERSION>      librill.so.<SOVERSION>
#   dev        librill-dev             headers, librill.so, librill.a, rill.pc,
#                                      the CMake package, man pages, the
#                                      README, guides and examples
#                                      (/usr/share/doc/librill-dev)
#   tls        librill-tls<SOVERSION>  librill-tls.so.<SOVERSION>
#   tls_dev    librill-tls-dev         rill/tls.h, librill-tls.so, .a, .pc,
#                                      rillTlsTargets.cmake, the rill_tls*
#                                      and rill_start_tls* man pages
#
# The packages install under /usr, with the library directory the tree was
# configured with: configure with -DCMAKE_INSTALL_PREFIX=/usr to get
# Debian's multiarch directory (lib/x86_64-linux-gnu) rather than lib.
# Runtime dependencies (liburing, OpenSSL, libc) come from dpkg-shlibdeps;
# tests/package/run.sh checks them and builds a program against the
# unpacked packages.

# The address the project's commits carry; a distributor sets their own.
set(rill_maintainer_default
	"rill maintainers <maintainers@users.noreply.h-seed-8c5ce860.example>")
set(RILL_PACKAGE_MAINTAINER "${rill_maintainer_default}" CACHE STRING
	"Maintainer field of the Debian packages (\"Name <email>\")")
if(RILL_PACKAGE_MAINTAINER STREQUAL "The rill authors")	# the old default
	set(RILL_PACKAGE_MAINTAINER "${rill_maintainer_default}" CACHE STRING
		"Maintainer field of the Debian packages (\"Name <email>\")" FORCE)
endif()
if(NOT RILL_PACKAGE_MAINTAINER MATCHES "^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$")
	message(WARNING "RILL_PACKAGE_MAINTAINER should read \"Name <email>\" "
		"(Debian policy 5.6.2): ${RILL_PACKAGE_MAINTAINER}")
endif()

# Debian names a runtime library package after its SONAME: libfoo1, and
# libfoo2-1 where the name ends in a digit.
function(rill_deb_runtime_name out target base)
	get_target_property(so ${target} SOVERSION)
	if(base MATCHES "[0-9]$")
		set(${out} "${base}-${so}" PARENT_SCOPE)
	else()
		set(${out} "${base}${so}" PARENT_SCOPE)
	endif()
endfunction()

set(CPACK_PACKAGE_NAME rill)
set(CPACK_PACKAGE_VENDOR "The rill authors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Empty, not unset: CPackDeb would put a set summary above each
# package's own first line, and CPack defaults it to the project's.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_CONTACT "${RILL_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${RILL_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps reads the libraries' NEEDED entries. It must find
# librill.so.<SOVERSION> for librill-tls, so it also looks where the build
# wrote it; the package it belongs to is named below, by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
get_target_property(rill_libdir rill LIBRARY_OUTPUT_DIRECTORY)
if(NOT rill_libdir)
	set(rill_libdir ${PROJECT_BINARY_DIR})
endif()
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${rill_libdir})
# A shlibs file, so that programs packaged against rill depend on
# librill<SOVERSION> (>= this version). CPack's postinst runs ldconfig; the
# trigger is what Debian asks of a library package now.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/triggers "activate-noawait ldconfig\n")
# CPack (3.25) also writes a postinst and postrm calling ldconfig for a
# library in /usr/lib, which lintian flags (maintscript-calls-ldconfig);
# only scripts of our own stop it, and lintian flags empty ones too.
set(rill_deb_lib_control ${PROJECT_BINARY_DIR}/packaging/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

if(CMAKE_LIBRARY_ARCHITECTURE AND
		NOT CMAKE_INSTALL_LIBDIR MATCHES "${CMAKE_LIBRARY_ARCHITECTURE}")
	message(STATUS "rill: Debian packages install the libraries in "
		"/usr/${CMAKE_INSTALL_LIBDIR}: configure with "
		"-DCMAKE_INSTALL_PREFIX=/usr for lib/${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

set(rill_deb_version "${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
set(rill_deb_about "rill brings the programming model of Python's asyncio Streams\n\
to C on Linux: connections and servers, readers with readline,\n\
readexactly and readuntil, writers with drain, and tasks with timeouts\n\
and cancellation, in stackful tasks over an io_uring proactor.")

rill_deb_runtime_name(rill_pkg_runtime rill librill)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${rill_pkg_runtime})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${rill_deb_lib_control})
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "${PROJECT_DESCRIPTION}\n\
${rill_deb_about}\n\nThis package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME librill-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
	"${rill_pkg_runtime} (= ${rill_deb_version}), liburing-dev (>= 2.3)")
set(CPACK_DEBIAN_DEV_DESCRIPTION "${PROJECT_DESCRIPTION} (development files)\n\
${rill_deb_about}\n\nThis package contains the headers, the static library,\n\
the pkg-config file, the CMake package, the manual pages (man rill),\n\
the guides and the examples.")

set(CPACK_COMPONENTS_ALL runtime dev)

if(RILL_HAVE_TLS)
	rill_deb_runtime_name(rill_pkg_tls rill_tls librill-tls)
	set(CPACK_DEBIAN_TLS_PACKAGE_NAME ${rill_pkg_tls})
	set(CPACK_DEBIAN_TLS_PACKAGE_SECTION libs)
	set(CPACK_DEBIAN_TLS_PACKAGE_CONTROL_EXTRA ${rill_deb_lib_control})
	# librill-tls calls rill internals that carry no ABI promise: it needs
	# the librill built with it.
	set(CPACK_DEBIAN_TLS_PACKAGE_DEPENDS "${rill_pkg_runtime} (= ${rill_deb_version})")
	set(CPACK_DEBIAN_TLS_DESCRIPTION "TLS for rill streams over OpenSSL\n\
${rill_deb_about}\n\nThis package contains rill-tls, the shared library that\n\
carries rill streams over TLS with OpenSSL.")

	set(CPACK_DEBIAN_TLS_DEV_PACKAGE_NAME librill-tls-dev)
	set(CPACK_DEBIAN_TLS_DEV_PACKAGE_SECTION libdevel)
	set(CPACK_DEBIAN_TLS_DEV_PACKAGE_DEPENDS
		"${rill_pkg_tls} (= ${rill_deb_version}), librill-dev (= ${rill_deb_version}), libssl-dev (>= 3)")
	set(CPACK_DEBIAN_TLS_DEV_DESCRIPTION "TLS for rill streams over OpenSSL (development files)\n\
${rill_deb_about}\n\nThis package contains the header, the static library,\n\
the pkg-config file and the manual pages of rill-tls, and its part of\n\
the CMake package.")

	list(APPEND CPACK_COMPONENTS_ALL tls tls_dev)
endif()

# Debian wants the licence as /usr/share/doc/<package>/copyright in every
# package, in the machine-readable format. Installed only into packages
# (EXCLUDE_FROM_ALL), never by a plain `cmake --install`.
file(READ ${PROJECT_SOURCE_DIR}/LICENSE rill_license)
string(REGEX MATCH "Copyright \\(c\\) ([^\n]*)" _ "${rill_license}")
set(rill_copyright "${CMAKE_MATCH_1}")
# The text after the title and copyright lines, as a field's body.
string(REGEX REPLACE "^[^\n]*\n+Copyright [^\n]*\n+" "" rill_license "${rill_license}")
string(REGEX REPLACE "\n+$" "" rill_license "${rill_license}")
string(REPLACE "\n\n" "\n.\n" rill_license "${rill_license}")
string(REPLACE "\n" "\n " rill_license "${rill_license}")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/copyright
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rill

Files: *
Copyright: ${rill_copyright}
License: MIT
 ${rill_license}
")

# changelog.Debian.gz (the packaging's history: one entry, this build) and
# changelog.gz (CHANGELOG.md, upstream's), compressed as Debian wants:
# gzip -9n, no name or time stamp in the header. The entry's date is
# SOURCE_DATE_EPOCH's where set, for reproducible packages.
string(TIMESTAMP rill_deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${PROJECT_BINARY_DIR}/packaging/changelog.Debian
"rill (${rill_deb_version}) unstable; urgency=medium

  * Packages of rill ${PROJECT_VERSION} built with CPack from the source
    tree; see changelog.gz for what changed upstream.

 -- ${RILL_PACKAGE_MAINTAINER}  ${rill_deb_date}
")
foreach(f changelog.Debian CHANGELOG.md)
	if(f STREQUAL "CHANGELOG.md")
		set(in ${PROJECT_SOURCE_DIR}/CHANGELOG.md)
		set(out ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
	else()
		set(in ${PROJECT_BINARY_DIR}/packaging/${f})
		set(out ${in}.gz)
	endif()
	execute_process(COMMAND ${RILL_GZIP} -9nc ${in}
		OUTPUT_FILE ${out} RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "gzip ${in}: ${rc}")
	endif()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
	${PROJECT_SOURCE_DIR}/CHANGELOG.md)

foreach(comp IN LISTS CPACK_COMPONENTS_ALL)
	string(TOUPPER ${comp} COMP)
	install(FILES ${PROJECT_BINARY_DIR}/packaging/copyright
		${PROJECT_BINARY_DIR}/packaging/changelog.Debian.gz
		${PROJECT_BINARY_DIR}/packaging/changelog.gz
		DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${COMP}_PACKAGE_NAME}
		COMPONENT ${comp} EXCLUDE_FROM_ALL)
endforeach()

# The guides and the examples, with the headers in librill-dev (and in a
# plain install): /usr/share/doc/librill-dev/{README.md,docs/,examples/}.
# tests/package/run.sh builds every example from the installed packages.
set(RILL_INSTALL_DOCDIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/librill-dev CACHE STRING
	"Where the README, the guides (docs/) and the examples are installed")
install(FILES ${PROJECT_SOURCE_DIR}/README.md
	DESTINATION ${RILL_INSTALL_DOCDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
	DESTINATION ${RILL_INSTALL_DOCDIR}/docs COMPONENT dev
	FILES_MATCHING PATTERN "*.md")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/
	DESTINATION ${RILL_INSTALL_DOCDIR}/examples COMPONENT dev
	FILES_MATCHING PATTERN "*.c" PATTERN "*.h")

include(CPack)
