/* SPDX-License-Identifier: MIT */
/* engine/options.c: reading a caller's options struct of any version, and
 * the library's version. */
#include <errno.h>
#include <string.h>

#include "engine/internal.h"

/* The caller's struct may come from an older program (smaller: the fields
 * it lacks keep the defaults already in dst) or a newer one (larger: fine
 * if it sets nothing this library does not know, as openat2 and clone3
 * judge a newer struct). */
int rill__options_load(void *dst, size_t dst_size, const void *src,
		       const char *type)
{
	const unsigned char *tail;
	size_t size, i;

	if (!src)
		return 0;
	memcpy(&size, src, sizeof(size));
	if (size < sizeof(size) || size > RILL__OPTIONS_SIZE_MAX)
		return rill__set_detail(-EINVAL, "%s.size is %zu: start the struct "
					"from its init macro (RILL_..._INIT)", type, size);
	for (tail = src, i = dst_size; i < size; i++)
		if (tail[i])
			return rill__set_detail(-E2BIG, "%s sets fields this rill %s "
						"does not know", type, RILL_VERSION_STRING);
	memcpy(dst, src, size < dst_size ? size : dst_size);
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}

unsigned rill_version(void)
{
	return RILL_VERSION_HEX;
}

const char *rill_version_string(void)
{
	return RILL_VERSION_STRING;
}
