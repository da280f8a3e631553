/* main.c — `rewire-router`: the router service (router_cli.h). */
#include "router_cli.h"

#include "blas.h"

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    return router_main(argc, argv);
}
