/* util.c - paths, random numbers and whole files read into memory, for the whole runtime. */
#include "rt.h"

#include <math.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *nn_join_path(const char *dir, const char *path)
{
    if (!dir || !*dir || path[0] == '/') {
        char *s = nn_alloc(strlen(path) + 1, 1);
        strcpy(s, path);
        return s;
    }
    size_t len = strlen(dir) + 1 + strlen(path) + 1;
    char *s = nn_alloc(len, 1);
    snprintf(s, len, "%s/%s", dir, path);
    return s;
}

void nn_shape_text(int rank, const int *shape, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < rank && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", d ? ", " : "", shape[d]);
    if (used < len)
        snprintf(buf + used, len - used, rank == 1 ? ",)" : ")");
}

/* splitmix64: small, fast, and its whole state is one number to checkpoint. */
uint64_t nn_rng_next(nn_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return nn_mix64(r->state);
}

float nn_rng_uniform(nn_rng *r)
{
    return (float)(nn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Box-Muller, one number per two draws: the generator stays a single state. */
double nn_rng_normal(nn_rng *r)
{
    double u1 = ((double)(nn_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);   /* (0, 1] */
    double u2 = (double)(nn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void nn_shuffle(int *idx, int n, nn_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(nn_rng_next(r) % (uint64_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

char *nn_read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        nn_error(path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = nn_alloc(cap, 1);
    for (;;) {
        if (n + 1 == cap) {
            char *bigger = nn_alloc_for(path, "its text", cap * 2, 1);
            if (!bigger) {
                fclose(f);
                free(buf);
                return NULL;
            }
            memcpy(bigger, buf, n);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (ferror(f)) {
        nn_error(path, "cannot read: %s", strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}
