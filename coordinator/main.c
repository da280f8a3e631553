/* main.c — `rewire-coordinator`: owns a job (coord_cli.h). */
#include "coord_cli.h"

#include "blas.h"

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    return coord_main(argc, argv);
}
