# SPDX-License-Identifier: MIT
# Section-3 man pages: installed with the library, and checked by a test
# (every exported function has a page, every page renders without a
# warning). Included from the top-level CMakeLists.txt after the install
# rules; uses its RILL_BUILD_TESTS, rill_fuzz and RILL_HAVE_TLS.

file(GLOB RILL_MAN3_PAGES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/man/man3/*.3)

# Installed compressed (gzip -9n, as Debian wants them; man-db reads them,
# ".so" links included). The pages of rill-tls (rill_tls*, rill_start_tls*)
# go with it, to librill-tls-dev; the others to librill-dev.
find_program(RILL_GZIP gzip REQUIRED)
set(rill_man_out ${PROJECT_BINARY_DIR}/man/man3)
set(rill_man_gz "")
foreach(page ${RILL_MAN3_PAGES})
	get_filename_component(name ${page} NAME)
	set(gz ${rill_man_out}/${name}.gz)
	add_custom_command(OUTPUT ${gz}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${rill_man_out}
		COMMAND sh -c "\"$0\" -9nc \"$1\" > \"$2\"" ${RILL_GZIP} ${page} ${gz}
		DEPENDS ${page} VERBATIM)
	list(APPEND rill_man_gz ${gz})
	if(name MATCHES "^rill_(tls|start_tls)")
		if(NOT RILL_HAVE_TLS)
			continue()	# no rill-tls, nothing they describe
		endif()
		set(component tls_dev)
	else()
		set(component dev)
	endif()
	install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3
		COMPONENT ${component})
endforeach()
add_custom_target(rill_man_pages ALL DEPENDS ${rill_man_gz})

if(RILL_BUILD_TESTS AND NOT rill_fuzz)
	set(rill_man_libs $<TARGET_FILE:rill>)
	if(RILL_HAVE_TLS)
		list(APPEND rill_man_libs $<TARGET_FILE:rill_tls>)
	endif()
	add_test(NAME man_pages_cover_exports
		COMMAND bash ${PROJECT_SOURCE_DIR}/tests/check-man.sh ${rill_man_libs})
	set_tests_properties(man_pages_cover_exports PROPERTIES
		SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "build;doc")
endif()

# The code a reader copies out of README.md and docs/*.md (and
# tests/doc/*.c) compiles against these headers and links against these
# libraries (tests/check-doc-code.sh).
if(RILL_BUILD_TESTS AND NOT rill_fuzz)
	list(JOIN rill_san_flags " " rill_doc_san_flags)
	add_test(NAME doc_code_blocks_compile
		COMMAND bash ${PROJECT_SOURCE_DIR}/tests/check-doc-code.sh ${rill_man_libs})
	set_tests_properties(doc_code_blocks_compile PROPERTIES
		TIMEOUT 300 LABELS "build;doc"
		ENVIRONMENT "CC=${CMAKE_C_COMPILER};RILL_TEST_CFLAGS=${rill_doc_san_flags}")
endif()
