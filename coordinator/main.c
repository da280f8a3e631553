/* main.c — `rewire-coordinator`: owns a job (cmdline.h). */
#include "cmdline.h"

#include "blas.h"

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    return coord_main(argc, argv);
}
