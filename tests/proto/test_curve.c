/* test_curve.c — CURVE keys on disk, and a server that admits only the
 * clients its --allow lists. */
#include "curve.h"

#include "err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"

TestSuite(curve, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 30);

static const char *stem(const char *name)
{
    static char buf[4][700];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", rwt_dir, name);
    return buf[i];
}

static const char *file(const char *name, const char *ext)
{
    static char buf[4][720];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s.%s", rwt_dir, name, ext);
    return buf[i];
}

static void new_key(const char *name, curve_key_t *k)
{
    char why[512];
    cr_assert_eq(curve_key_new(stem(name), why, sizeof why), 0, "%s", why);
    cr_assert_eq(curve_key_load(file(name, "key"), true, k, why, sizeof why), 0, "%s", why);
}

Test(curve, a_new_key_pair_reads_back_and_is_never_overwritten)
{
    curve_key_t k, pub;
    char why[512];
    new_key("svc", &k);
    cr_assert_eq(strlen(k.pub), CURVE_Z85_LEN);
    cr_assert_eq(strlen(k.sec), CURVE_Z85_LEN);
    struct stat st;
    cr_assert_eq(stat(file("svc", "key"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the secret key file is readable by others");
    cr_assert_eq(curve_key_load(file("svc", "pub"), false, &pub, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(pub.pub, k.pub);
    cr_assert_str_eq(pub.sec, "", "the .pub file holds a secret");
    cr_assert_lt(curve_key_load(file("svc", "pub"), true, &pub, why, sizeof why), 0);
    cr_assert(strstr(why, "holds a public key only"), "%s", why);
    cr_assert_eq(curve_key_new(stem("svc"), why, sizeof why), -EEXIST);
    cr_assert(strstr(why, "exists"), "%s", why);
    curve_key_t again;
    cr_assert_eq(curve_key_load(file("svc", "key"), true, &again, why, sizeof why), 0);
    cr_assert_str_eq(again.sec, k.sec, "the key pair was overwritten");
}

/* czmq's zcert files read as they are; a bad one is named with its line. */
Test(curve, key_files_are_read_strictly_and_errors_say_where)
{
    char why[512];
    curve_key_t k;
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    char text[1024];
    snprintf(text, sizeof text,
             "#   ****  Generated on 2026-11-27 by CZMQ  ****\n"
             "#   ZeroMQ CURVE **Secret** Certificate\n\n"
             "metadata\n    name = \"w1\"\ncurve\n    public-key = \"%s\"\n"
             "    secret-key = \"%s\"\n",
             pub, sec);
    rwt_write_file(file("zcert", "txt"), text, strlen(text));
    cr_assert_eq(curve_key_load(file("zcert", "txt"), true, &k, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(k.pub, pub);

    snprintf(text, sizeof text, "curve\n    public-key = \"%.39s\"\n", pub);
    rwt_write_file(file("short", "pub"), text, strlen(text));
    cr_assert_eq(curve_key_load(file("short", "pub"), false, &k, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "short.pub:2: public-key wants 40 Z85 characters"), "%s", why);

    rwt_write_file(file("empty", "pub"), "curve\n", 6);
    cr_assert_eq(curve_key_load(file("empty", "pub"), false, &k, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "no public-key line"), "%s", why);

    char pub2[41], sec2[41];
    cr_assert_eq(zmq_curve_keypair(pub2, sec2), 0);
    snprintf(text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n", pub,
             sec2);
    rwt_write_file(file("mixed", "key"), text, strlen(text));
    cr_assert_eq(curve_key_load(file("mixed", "key"), true, &k, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "is not the secret-key's"), "%s", why);

    /* a long line is not read as two: its tail might look like a key */
    char longl[1024];
    int n = snprintf(longl, sizeof longl, "#%0510d", 0); /* what one fgets takes */
    snprintf(longl + n, sizeof longl - (size_t)n, "    public-key = \"%s\"\n", pub);
    rwt_write_file(file("long", "pub"), longl, strlen(longl));
    cr_assert_eq(curve_key_load(file("long", "pub"), false, &k, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "long.pub:1: a line over 510 characters"), "%s", why);

    cr_assert_lt(curve_key_load(file("nothing", "key"), true, &k, why, sizeof why), 0);
    cr_assert(strstr(why, "nothing.key"), "%s", why);

    /* a FIFO is refused at once (opening it waited for a writer), a folder
     * too (it read as an I/O error) */
    cr_assert_eq(mkfifo(file("fifo", "key"), 0600), 0);
    cr_assert_eq(curve_key_load(file("fifo", "key"), true, &k, why, sizeof why), RW_ENOTFILE);
    cr_assert(strstr(why, "fifo.key: not a regular file"), "%s", why);
    cr_assert_eq(curve_key_load(rwt_dir, false, &k, why, sizeof why), RW_ENOTFILE);
}

Test(curve, options_are_checked_before_a_process_starts)
{
    curve_key_t k;
    char why[512], empty[720];
    new_key("svc", &k);
    curve_opts_t o = {.allow = rwt_dir};
    cr_assert_lt(curve_opts_check(&o, true, why, sizeof why), 0);
    cr_assert(strstr(why, "--allow needs --key"), "%s", why);
    snprintf(empty, sizeof empty, "%s/none", rwt_dir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    o = (curve_opts_t){.key_file = file("svc", "key"), .allow = empty};
    cr_assert_lt(curve_opts_check(&o, true, why, sizeof why), 0);
    cr_assert(strstr(why, "holds no key file"), "%s", why);
    o.allow = rwt_dir; /* svc.key, svc.pub, and a stranger */
    rwt_write_file(file("notes", "txt"), "hello\n", 6);
    cr_assert_lt(curve_opts_check(&o, true, why, sizeof why), 0);
    cr_assert(strstr(why, "notes.txt: no public-key line"), "%s", why);
    o.allow = file("svc", "pub");
    cr_assert_eq(curve_opts_check(&o, true, why, sizeof why), 0, "%s", why);
    curve_opts_t c = {.server_file = file("svc", "pub"), .key_file = file("svc", "pub")};
    cr_assert_lt(curve_opts_check(&c, false, why, sizeof why), 0, "a client's --key is a pair");
}

/* Sends "hi" from a new DEALER (CURVE with own, unless NULL) and says
 * whether the server got it within 500 ms. */
static bool heard_from(void *ctx, void *server, const char *ep, const curve_key_t *own,
                       const curve_key_t *srv)
{
    void *c = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, ms = 500;
    zmq_setsockopt(c, ZMQ_LINGER, &zero, sizeof zero);
    if (own)
        cr_assert_eq(curve_client(c, own, srv), 0);
    cr_assert_eq(zmq_connect(c, ep), 0);
    zmq_send(c, "hi", 2, ZMQ_DONTWAIT);
    zmq_setsockopt(server, ZMQ_RCVTIMEO, &ms, sizeof ms);
    char id[256], body[16];
    bool got =
        zmq_recv(server, id, sizeof id, 0) >= 0 && zmq_recv(server, body, sizeof body, 0) == 2;
    zmq_close(c);
    return got;
}

Test(curve, a_server_admits_only_the_listed_keys)
{
    curve_key_t svc, a, b;
    char why[512], ep[720];
    new_key("svc", &svc);
    new_key("a", &a);
    new_key("b", &b);
    void *ctx = zmq_ctx_new();
    curve_auth_t *auth = curve_auth_start(ctx, file("a", "pub"), &svc, "test", why, sizeof why);
    cr_assert_not_null(auth, "%s", why);
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(curve_server(s, &svc), 0);
    snprintf(ep, sizeof ep, "ipc://%s/s.sock", rwt_dir);
    cr_assert_eq(zmq_bind(s, ep), 0);

    cr_assert(heard_from(ctx, s, ep, &a, &svc), "the listed key was not admitted");
    cr_assert(heard_from(ctx, s, ep, &svc, &svc), "the service's own key was not admitted");
    cr_assert_not(heard_from(ctx, s, ep, &b, &svc), "an unlisted key was admitted");
    cr_assert_not(heard_from(ctx, s, ep, NULL, NULL), "a client without CURVE was heard");
    curve_key_t wrong = svc;
    memcpy(wrong.pub, b.pub, sizeof wrong.pub); /* a client told the wrong server key */
    cr_assert_not(heard_from(ctx, s, ep, &a, &wrong), "a client of the wrong key was heard");
    unsigned long admitted, refused;
    curve_auth_counts(auth, &admitted, &refused);
    cr_assert_eq(admitted, 2);
    cr_assert_geq(refused, 1);
    zmq_close(s);
    curve_auth_stop(&auth);
    curve_auth_stop(&auth);
    zmq_ctx_term(ctx);
}
