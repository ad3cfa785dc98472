// SPDX-License-Identifier: MIT
// A C++ program built against an installed rill: the headers must compile
// as C++ and link (extern "C"), the init macros must work in C++, and the
// library must be the version the headers state. With RILL_TEST_TLS it
// also makes a TLS client context through rill-tls.
#include <cstdio>
#include <cstring>

#include <rill.h>
#ifdef RILL_TEST_TLS
#include <rill/tls.h>
#endif

static int body(void *arg)
{
	*static_cast<rill_time *>(arg) = rill_now();
	return rill_sleep_ms(1);
}

int main()
{
	std::printf("rill_version_string(): %s\n", rill_version_string());
	if (rill_version() != RILL_VERSION_HEX ||
	    std::strcmp(rill_version_string(), RILL_VERSION_STRING) != 0) {
		std::fprintf(stderr, "library %s differs from the headers' %s\n",
			     rill_version_string(), RILL_VERSION_STRING);
		return 1;
	}
	rill_open_options oo = RILL_OPEN_OPTIONS_INIT;
	rill_server_options so = RILL_SERVER_OPTIONS_INIT;
	if (oo.size != sizeof(oo) || oo.sock != -1 || so.sock != -1)
		return 1;
#ifdef RILL_TEST_TLS
	rill_tls_options to = RILL_TLS_OPTIONS_INIT;
	rill_tls_ctx *ctx;
	if (rill_tls_ctx_new_client(&to, &ctx) != 0)
		return 1;
	rill_tls_ctx_free(ctx);
	std::printf("TLS client context made and freed\n");
#endif
	rill_time when = 0;
	int result = -1;
	int rc = rill_run(body, &when, &result);
	if (rc < 0) {	// io_uring unavailable: not this test's concern
		std::printf("rill_run: %s\n", rill_strerror(rc));
		return rc <= RILL_EURING_NOSYS && rc >= RILL_EURING_GROUP ? 0 : 1;
	}
	std::printf("a task ran at %llu ns and returned %d\n",
		    static_cast<unsigned long long>(when), result);
	return when != 0 && result == 0 ? 0 : 1;
}
