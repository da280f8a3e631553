/* rng.c — normal draws for rng.h. */
#include "rng.h"

#include <math.h>

void rw_rng_normal(rw_rng_t *r, float *x, size_t n, float std)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = rw_rng_unit(r), u2 = rw_rng_unit(r);
        double rad = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
        x[i] = (float)(rad * cos(th)) * std;
        if (i + 1 < n)
            x[i + 1] = (float)(rad * sin(th)) * std;
    }
}
