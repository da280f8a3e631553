/* proto.c — protocol-wide facts: the version, and what the codec links. */
#include "proto.h"

#include <msgpack.h>

const char *proto_msgpack_version(void)
{
    return msgpack_version();
}
