/* curve.h — CURVE security on the wire: keys on disk, sockets that use
 * them, and the list of clients a service admits.
 *
 * Without keys every socket runs ZeroMQ's NULL mechanism: anyone who can
 * reach a port can speak to the service, in the clear. With them:
 *
 *   - a service (the coordinator, the router service) holds a key pair
 *     (--key FILE) and is a CURVE server: traffic is encrypted, and only a
 *     client that knows the service's public key can connect;
 *   - a client (a worker, the router service's agent, a health probe) is
 *     told the service's public key (--server-key FILE) and uses a key pair
 *     of its own (--key FILE, or a fresh one for the run);
 *   - with --allow PATH a service admits only the clients whose public keys
 *     are in PATH (a key file, or a folder of them), through a ZAP handler
 *     (RFC 27) on a thread of its own; a refused key is logged once.
 *
 * A key file is text in czmq's certificate format, so zcert files work:
 *
 *     curve
 *         public-key = "<40 Z85 characters>"
 *         secret-key = "<40 Z85 characters>"
 *
 * `rewire keys new NAME` writes NAME.key (both, mode 0600) and NAME.pub
 * (the public key alone, to hand out).
 */
#ifndef RW_PROTO_CURVE_H
#define RW_PROTO_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#define CURVE_Z85_LEN 40

typedef struct curve_key {
    char pub[CURVE_Z85_LEN + 1];
    char sec[CURVE_Z85_LEN + 1]; /* "" in a public key file */
} curve_key_t;

/* What a process was told on its command line (zeroed: no CURVE). */
typedef struct curve_opts {
    const char *key_file;    /* --key: its own key pair */
    const char *server_file; /* --server-key: the service it connects to */
    const char *allow;       /* --allow: the clients a service admits */
} curve_opts_t;

/* Writes a fresh key pair to stem.key (mode 0600) and stem.pub; neither
 * may exist. Returns 0, or a negative error with why filled in. */
int curve_key_new(const char *stem, char *why, size_t whylen);
/* Reads a key file. With need_secret the file must hold the secret key,
 * and it must match the public one. Returns 0 with *k, or a negative error
 * with why ("FILE:LINE: ...") filled in. */
int curve_key_load(const char *path, bool need_secret, curve_key_t *k, char *why, size_t whylen);

/* Makes sock (before bind) a CURVE server with key pair k. Returns 0 or
 * -errno from ZeroMQ. */
int curve_server(void *sock, const curve_key_t *k);
/* Makes sock (before connect) a CURVE client of the server whose public
 * key is server->pub, as own (NULL: a fresh key pair). Returns 0 or -errno. */
int curve_client(void *sock, const curve_key_t *own, const curve_key_t *server);

/* Sets up a service's socket from o: nothing without o->key_file; a CURVE
 * server with it. Returns 0, or a negative error with why filled in. */
int curve_setup_server(void *sock, const curve_opts_t *o, char *why, size_t whylen);
/* Sets up a client's socket from o: nothing without o->server_file; a
 * CURVE client of that server with it (as o->key_file, or a fresh key).
 * A health probe may give only --key, the service's own key file: its
 * public half is then the server's key. Returns 0, or a negative error
 * with why filled in. */
int curve_setup_client(void *sock, const curve_opts_t *o, char *why, size_t whylen);

/* Checks o before a process starts its work: the key files it names read
 * (--key a pair), and for a server --allow holds keys and comes with
 * --key. Returns 0, or a negative error with why filled in. */
int curve_opts_check(const curve_opts_t *o, bool server, char *why, size_t whylen);

/* The admission list of one ZeroMQ context: while it runs, every CURVE
 * server socket of zctx admits only the public keys read from allow (a key
 * file or a folder of them; files whose names start with '.' are skipped)
 * and own (the service's key, for its own health probe; may be NULL).
 * Start it before any socket of zctx binds, and stop it before the
 * context is terminated. who names the service in the log. */
typedef struct curve_auth curve_auth_t;
/* Returns NULL with why filled in when a key file cannot be read, allow
 * holds none, or the handler cannot bind. */
curve_auth_t *curve_auth_start(void *zctx, const char *allow, const curve_key_t *own,
                               const char *who, char *why, size_t whylen);
/* Accepts NULL; NULLs *self_p. */
void curve_auth_stop(curve_auth_t **self_p);
/* How many handshakes it admitted and refused. */
void curve_auth_counts(curve_auth_t *a, unsigned long *admitted, unsigned long *refused);

/* Watches sock's handshakes (call before connect) through a PAIR on zctx
 * at inproc address addr, so that a client can tell a refused key from a
 * service that is not there. Returns the PAIR (close it before sock), or
 * NULL when it cannot watch (only the reason is then lost). */
void *curve_watch(void *zctx, void *sock, const char *addr);
/* How a client connects. */
typedef enum {
    CURVE_NONE = 0,  /* plain ZeroMQ */
    CURVE_FRESH_KEY, /* CURVE, with a key pair made for the run (no --key) */
    CURVE_OWN_KEY    /* CURVE, with its --key */
} curve_client_t;
/* Why the handshakes mon (curve_watch's; may be NULL) saw failed, as text
 * to append to "no answer from EP" (": it refused this key ..."), or ""
 * when none failed. service names the other end. Reads what mon holds
 * without waiting. */
const char *curve_failure(void *mon, curve_client_t curve, const char *service);

/* The help lines of the flags above, for a service (--key, --allow) and a
 * client (--key, --server-key). */
extern const char curve_server_help[];
extern const char curve_client_help[];

#endif
