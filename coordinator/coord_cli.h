/* coord_cli.h — `rewire-coordinator`'s command line, as a function.
 *
 * main.c is one call to coord_main; tests call it too (in a forked child),
 * so they run exactly what the binary runs.
 */
#ifndef RW_COORD_CLI_H
#define RW_COORD_CLI_H

/* Runs `rewire-coordinator ARGS...` (argv[0] is the program). Returns the
 * exit status: 0 done, 1 failed, 2 bad usage. */
int coord_main(int argc, char **argv);

#endif
