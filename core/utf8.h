/* utf8.h — UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef RW_UTF8_H
#define RW_UTF8_H

#include <stddef.h>

/* Returns the byte offset of the first invalid sequence, or n if s is valid. */
size_t rw_utf8_check(const char *s, size_t n);

#endif
