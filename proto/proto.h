/* proto.h — the wire: the one place that knows rewire's protocol.
 *
 * Messages, their MessagePack encoding and validation, and the framing of
 * large artifacts live here and nowhere else; nothing outside proto/ calls
 * msgpack-c. Every message carries PROTO_VERSION and a peer on another
 * version is refused.
 *
 *   msg.h       every message, declared once in a table; encode, decode, check
 *   wire.h      messages over ZeroMQ sockets; bad ones counted, logged once, dropped
 *   xfer.h      artifacts in chunks with credit flow control and a checksum
 *
 * The artifact checksum (XXH64) is core/checksum.h, shared with bundles.
 */
#ifndef RW_PROTO_H
#define RW_PROTO_H

#define PROTO_VERSION 1

/* The SHUTDOWN reason that tells a worker which brought a domain that the
 * domain is in the bundles (printf format, the domain's name); any other
 * SHUTDOWN ends its command as a failure. */
#define PROTO_DOMAIN_IN "domain %s is in the bundles"

/* The msgpack-c library version this build links ("4.0.0"); never NULL. */
const char *proto_msgpack_version(void);

#endif
