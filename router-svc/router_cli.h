/* router_cli.h — `rewire-router`'s command line, as a function.
 *
 * main.c is one call to router_main; tests call it too (in a forked child).
 */
#ifndef RW_RSVC_CLI_H
#define RW_RSVC_CLI_H

/* Runs `rewire-router ARGS...` (argv[0] is the program). Returns the exit
 * status: 0 shut down, 1 failed, 2 bad usage. */
int router_main(int argc, char **argv);

#endif
