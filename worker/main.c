/* main.c — `rewire-worker`: trains what a coordinator leases (cmdline.h). */
#include "cmdline.h"

#include "blas.h"

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    return worker_main(argc, argv);
}
