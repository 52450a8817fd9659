/* dist.c - data-parallel training across processes with Open MPI: the only
 * file that calls MPI. Built with -DNN_HAVE_MPI (make MPI=1) it joins the job
 * that mpirun started; built without, or run without mpirun, it is one
 * process of rank 0 in a job of 1 and every call below does nothing, so
 * train.c calls them unconditionally.
 *
 * Every collective is nonblocking and polled against a deadline
 * (NNRT_MPI_TIMEOUT seconds, default 300), so a rank that hangs ends the
 * job instead of hanging it. To name that rank, each collective starts with a
 * check-in: every other rank sends rank 0 a small message, and rank 0, which
 * waits for them first, knows who did not come ("rank 1 did not answer within
 * 300 s"). The others wait longer (1.5 times the timeout, plus a second), so
 * when rank 0 is alive it is the one that speaks; when they time out it is
 * rank 0 that did not answer. Errors of MPI itself come back to us
 * (MPI_ERRORS_RETURN) and are reported with the rank before MPI_Abort.
 *
 * The gradients are summed in buckets of whole tensors, from the last layer's
 * down, each started (MPI_Iallreduce) as soon as the generated backward pass
 * says its gradients are final (nn_pass.grads_ready), so the sum of the last
 * layers' overlaps the backward pass of the first ones.
 *
 * NNRT_TEST_FAULT=RANK:STEP:hang|exit|kill makes that rank hang (sleep), fail
 * or die of SIGKILL before that optimizer step (1-based): how the tests
 * kill a rank. */
#include "rt.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef NN_HAVE_MPI
#include <mpi.h>
#endif

/* The test hook, in both builds: 0, or -1 when this rank is to fail now (a
 * rank that is to hang sleeps here for ever). */
int nn_dist_test_fault(int64_t step)
{
    const char *s = getenv("NNRT_TEST_FAULT");
    int rank, at;
    char kind[8];
    if (!s || sscanf(s, "%d:%d:%7s", &rank, &at, kind) != 3 || rank != nn_dist_rank() ||
        at != step)
        return 0;
    if (strcmp(kind, "hang") == 0)
        for (;;)
            sleep(60);
    if (strcmp(kind, "kill") == 0)
        raise(SIGKILL);
    return nn_error("NNRT_TEST_FAULT", "rank %d fails at step %d, as asked", rank, at);
}

#ifndef NN_HAVE_MPI

int nn_dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}
int nn_dist_rank(void) { return 0; }
int nn_dist_size(void) { return 1; }
int nn_dist_local_size(void) { return 1; }
void nn_dist_bcast(void *buf, size_t bytes, const char *what) { (void)buf, (void)bytes, (void)what; }
void nn_dist_sum_begin(const nn_model *m, float *grads) { (void)m, (void)grads; }
void nn_dist_grads_ready(const nn_pass *pass, size_t from) { (void)pass, (void)from; }
void nn_dist_sum_end(const char *what) { (void)what; }
void nn_dist_sum_doubles(double *buf, size_t n, const char *what) { (void)buf, (void)n, (void)what; }
int nn_dist_finalize(int rc) { return rc; }

#else

static int rank, size = 1, local_size = 1, joined;
static double timeout_s = 300;
/* The check-in (below): rank 0's receives and their tokens; the others' send. */
static MPI_Request *arrivals, sent = MPI_REQUEST_NULL;
static int *tokens, token;

int nn_dist_rank(void) { return rank; }
int nn_dist_size(void) { return size; }
int nn_dist_local_size(void) { return local_size; }

/* Ends the whole job after saying why, on this rank. */
static _Noreturn void end_job(const char *why)
{
    fprintf(stderr, "nnrt: rank %d of %d: %s; ending the job\n", rank, size, why);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return;
    char text[MPI_MAX_ERROR_STRING], why[MPI_MAX_ERROR_STRING + 128];
    int len;
    MPI_Error_string(rc, text, &len);
    snprintf(why, sizeof why, "MPI failed in %s: %s", what, text);
    end_job(why);
}

/* Launched by mpirun (or another PMIx launcher)? Run alone, the trainer does
 * not start MPI at all: no singleton start-up, nothing to finalise. */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static void read_timeout(void)
{
    const char *s = getenv("NNRT_MPI_TIMEOUT");
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (s && *end == '\0' && v > 0)
        timeout_s = v;
    else if (s)
        nn_warning("NNRT_MPI_TIMEOUT", "'%s' is not a number of seconds above 0; using %g",
                   s, timeout_s);
}

int nn_dist_init(int *argc, char ***argv)
{
    if (!launched())
        return 0;
    check(MPI_Init(argc, argv), "MPI_Init");
    joined = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    check(MPI_Comm_size(node, &local_size), "MPI_Comm_size");
    MPI_Comm_free(&node);
    read_timeout();
    if (rank == 0 && size > 1) {
        arrivals = nn_alloc((size_t)size - 1, sizeof *arrivals);
        tokens = nn_alloc((size_t)size - 1, sizeof *tokens);
    }
    /* Only rank 0 prints; the others' errors still reach stderr. */
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        return -1;
    return 0;
}

/* Polls reqs until all are done (each done one becomes MPI_REQUEST_NULL);
 * past the deadline ends the job saying who did not answer: for rank 0's
 * check-in (by_rank) request i is rank i + 1's, otherwise it is rank 0 that
 * did not. */
static void wait_until(MPI_Request *reqs, int n, double seconds, const char *what, int by_rank)
{
    double deadline = MPI_Wtime() + seconds;
    struct timespec pause = {0, 20000};
    for (long polls = 0;; polls++) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            int done = 1;
            if (reqs[i] != MPI_REQUEST_NULL)
                check(MPI_Test(&reqs[i], &done, MPI_STATUS_IGNORE), what);
            open += !done;
        }
        if (!open)
            return;
        if (MPI_Wtime() > deadline)
            break;
        if (polls > 1000)
            nanosleep(&pause, NULL);
    }
    char why[256] = "rank 0";
    int len = by_rank ? 0 : 6;
    for (int i = 0; by_rank && i < n && len < 100; i++)
        if (reqs[i] != MPI_REQUEST_NULL)
            len += snprintf(why + len, sizeof why - (size_t)len, "%srank %d", len ? ", " : "",
                            i + 1);
    snprintf(why + len, sizeof why - (size_t)len, " did not answer within %g s (%s)", timeout_s,
             what);
    end_job(why);
}

/* The check-in: every rank but 0 sends rank 0 a token as it reaches a
 * collective; rank 0 receives them all, with the deadline, before it waits
 * for the collective itself, so it knows who is missing. arrivals, tokens:
 * rank 0's receives; sent: the others' send, completed with the collective. */
enum { CHECK_IN_TAG = 7013 };

static void check_in_start(const char *what)
{
    if (rank != 0) {
        check(MPI_Isend(&token, 1, MPI_INT, 0, CHECK_IN_TAG, MPI_COMM_WORLD, &sent), what);
        return;
    }
    for (int r = 1; r < size; r++)
        check(MPI_Irecv(&tokens[r - 1], 1, MPI_INT, r, CHECK_IN_TAG, MPI_COMM_WORLD,
                        &arrivals[r - 1]), what);
}

static void check_in_wait(const char *what)
{
    if (rank == 0)
        wait_until(arrivals, size - 1, timeout_s, what, 1);
}

/* Waits for started collectives (and this rank's check-in); the others wait
 * longer than rank 0, so that a live rank 0 names the missing rank first. */
static void finish(MPI_Request *ops, int n, const char *what)
{
    MPI_Request *reqs = nn_alloc((size_t)n + 1, sizeof *reqs);
    memcpy(reqs, ops, (size_t)n * sizeof *reqs);
    reqs[n] = sent;
    wait_until(reqs, n + 1, rank == 0 ? timeout_s : 1.5 * timeout_s + 1, what, 0);
    sent = MPI_REQUEST_NULL;
    free(reqs);
}

/* MPI counts are ints: a buffer passes in chunks of at most this many. */
#define CHUNK (1 << 30)

void nn_dist_bcast(void *buf, size_t bytes, const char *what)
{
    if (size == 1)
        return;
    for (size_t at = 0; at < bytes; at += CHUNK) {
        int n = bytes - at < CHUNK ? (int)(bytes - at) : CHUNK;
        MPI_Request op;
        check_in_start(what);
        check_in_wait(what);
        check(MPI_Ibcast((char *)buf + at, n, MPI_BYTE, 0, MPI_COMM_WORLD, &op), what);
        finish(&op, 1, what);
    }
}

void nn_dist_sum_doubles(double *buf, size_t n, const char *what)
{
    if (size == 1)
        return;
    for (size_t at = 0; at < n; at += CHUNK) {
        int count = n - at < CHUNK ? (int)(n - at) : CHUNK;
        MPI_Request op;
        check_in_start(what);
        check_in_wait(what);
        check(MPI_Iallreduce(MPI_IN_PLACE, buf + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD,
                             &op), what);
        finish(&op, 1, what);
    }
}

/* ---- the gradients, bucket by bucket ---------------------------------------------- */

typedef struct {
    size_t lo, hi;         /* floats [lo, hi) of the gradients */
    MPI_Request req;
} Bucket;

static Bucket *buckets;
static int n_buckets, next_bucket;
static const nn_model *bucket_model;
static float *sum_grads;

/* Whole tensors from the last one down, a bucket closed once it holds
 * NN_DIST_BUCKET_FLOATS (or CHUNK, MPI's count limit, within a tensor). */
static void plan_buckets(const nn_model *m)
{
    free(buckets);
    buckets = nn_alloc((size_t)m->n_tensors + m->n_params / CHUNK + 1, sizeof *buckets);
    n_buckets = 0;
    size_t hi = m->n_params;
    for (int i = m->n_tensors - 1; i >= 0; i--) {
        size_t lo = i == 0 ? 0 : m->tensors[i].offset;
        if (hi - lo < NN_DIST_BUCKET_FLOATS && i > 0)
            continue;
        for (; hi - lo > CHUNK; hi -= CHUNK)
            buckets[n_buckets++] = (Bucket){hi - CHUNK, hi, MPI_REQUEST_NULL};
        if (hi > lo)
            buckets[n_buckets++] = (Bucket){lo, hi, MPI_REQUEST_NULL};
        hi = lo;
    }
    bucket_model = m;
}

void nn_dist_sum_begin(const nn_model *m, float *grads)
{
    if (size == 1)
        return;
    if (bucket_model != m)
        plan_buckets(m);
    sum_grads = grads;
    next_bucket = 0;
    check_in_start("adding the gradients");
}

static void start_bucket(void)
{
    Bucket *b = &buckets[next_bucket++];
    check(MPI_Iallreduce(MPI_IN_PLACE, sum_grads + b->lo, (int)(b->hi - b->lo), MPI_FLOAT,
                         MPI_SUM, MPI_COMM_WORLD, &b->req), "adding the gradients");
}

/* Starts the buckets that are final now; testing the started ones lets MPI
 * move them on (Open MPI progresses a nonblocking collective only inside
 * MPI calls). */
void nn_dist_grads_ready(const nn_pass *pass, size_t from)
{
    (void)pass;
    while (next_bucket < n_buckets && buckets[next_bucket].lo >= from)
        start_bucket();
    for (int i = 0; i < next_bucket; i++) {
        int done;
        if (buckets[i].req != MPI_REQUEST_NULL)
            check(MPI_Test(&buckets[i].req, &done, MPI_STATUS_IGNORE), "adding the gradients");
    }
}

void nn_dist_sum_end(const char *what)
{
    if (size == 1)
        return;
    check_in_wait(what);
    while (next_bucket < n_buckets)
        start_bucket();
    MPI_Request *reqs = nn_alloc((size_t)n_buckets + 1, sizeof *reqs);
    for (int i = 0; i < n_buckets; i++)
        reqs[i] = buckets[i].req;
    finish(reqs, n_buckets, what);
    for (int i = 0; i < n_buckets; i++)
        buckets[i].req = MPI_REQUEST_NULL;
    free(reqs);
}

int nn_dist_finalize(int rc)
{
    if (!joined)
        return rc;
    fflush(stdout);
    if (rc != 0 && size > 1) {
        fprintf(stderr, "nnrt: rank %d of %d stopped (exit status %d); ending the job\n", rank,
                size, rc);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    free(arrivals);
    free(tokens);
    free(buckets);
    return rc;
}

#endif
