/* main.c — `rewire-worker`: trains what a coordinator leases (worker_cli.h). */
#include "worker_cli.h"

#include "blas.h"

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    return worker_main(argc, argv);
}
