/* train.c - Keras's fit() and evaluate() over a generated model: epochs of
 * shuffled mini-batches, forward, loss, backward, optimizer step; metrics,
 * validation, callbacks, checkpoints and history.
 *
 * Reproducibility: shuffling draws from one generator whose state goes into
 * checkpoints; dropout masks and augmentation are functions of (seed, step);
 * the generated kernels never split a sum between threads. So the same seed
 * and thread count give the same bits, and a resumed run continues exactly,
 * from an epoch's end or from within one (Ctrl-C, --save-every): the
 * checkpoint holds the step, the generator as the epoch began (which redraws
 * its order) and the epoch's sums so far. */
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- batches ------------------------------------------------------------------- */

/* NN_WORK_BUDGET, or the environment's NNRT_WORK_BYTES (for tests and small
 * machines). */
static size_t work_budget(void)
{
    const char *s = getenv("NNRT_WORK_BYTES");
    char *end;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    return s && *end == '\0' && v > 0 ? (size_t)v : NN_WORK_BUDGET;
}

void nn_batch_init(nn_batch *b, const nn_model *m, int capacity)
{
    size_t per_sample = m->work_floats * sizeof(float);
    size_t fits = per_sample ? work_budget() / per_sample : (size_t)capacity;
    memset(b, 0, sizeof *b);   /* part_grads stays NULL when a batch passes whole */
    b->capacity = capacity;
    b->part = m->whole_batches || fits >= (size_t)capacity ? capacity : fits ? (int)fits : 1;
    b->x = nn_alloc((size_t)capacity * (size_t)m->input_size, sizeof *b->x);
    b->y = nn_alloc((size_t)capacity * (size_t)(m->output_size + 1), sizeof *b->y);
    b->work = nn_alloc(m->scratch_floats + (size_t)b->part * m->work_floats, sizeof *b->work);
    b->dout = nn_alloc((size_t)capacity * (size_t)m->output_size, sizeof *b->dout);
    if (b->part < capacity)
        b->part_grads = nn_alloc(m->n_params, sizeof *b->part_grads);
}

void nn_batch_free(nn_batch *b)
{
    free(b->x);
    free(b->y);
    free(b->work);
    free(b->dout);
    free(b->part_grads);
    memset(b, 0, sizeof *b);
}

/* Fills b->x and b->y with samples idx[0..n) of d, as the model wants them:
 * rescaled, class indices made one-hot for categorical cross-entropy, an
 * autoencoder's (target: input) label its clean input. -1 when
 * nn_dataset_batch fails. */
static int labelled_fill(nn_batch *b, const nn_model *m, const nn_dataset *d, const int *idx,
                         int n)
{
    int width = nn_label_width(m);
    if (m->data.target_input) {
        if (nn_dataset_batch(d, idx, n, m->data.rescale, b->x, NULL) != 0)
            return -1;
        memcpy(b->y, b->x, (size_t)n * (size_t)m->input_size * sizeof *b->y);
        return 0;
    }
    if (d->labels && d->label_size == 1 && width > 1) {
        /* Class indices where the loss wants one-hot rows (categorical CE). */
        float *index = b->dout;
        if (nn_dataset_batch(d, idx, n, m->data.rescale, b->x, index) != 0)
            return -1;
        memset(b->y, 0, (size_t)n * (size_t)width * sizeof *b->y);
        for (int s = 0; s < n; s++)
            b->y[(size_t)s * (size_t)width + (size_t)index[s]] = 1.0f;
        return 0;
    }
    return nn_dataset_batch(d, idx, n, m->data.rescale, b->x, d->labels ? b->y : NULL);
}

/* With data: noise, the inputs get their noise after (and the labels stay clean). */
static int batch_fill(nn_batch *b, const nn_model *m, const nn_dataset *d, const int *idx, int n)
{
    int rc = labelled_fill(b, m, d, idx, n);
    if (rc == 0)
        nn_add_noise(m, d, idx, n, b->x);
    return rc;
}

/* ---- data ---------------------------------------------------------------------- */

static const char *output_layer(const nn_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1].name : "output";
}

/* Loads the source (from --data or where nn_find_data looks), keeps its
 * first `limit` samples (0: all) and checks its labels. like: the training
 * set whose vocabulary a text source uses, or NULL (nn_load_source). */
static int load_data(const nn_model *m, const nn_source *src, const nn_options *o, int limit,
                     const nn_dataset *like, nn_dataset *d)
{
    if (nn_load_source(m, src, o->data_dir, like, d) != 0)
        return -1;
    nn_dataset_truncate(d, limit);
    d->noise_stream = src == &m->data.train ? 1 : src == &m->data.validation ? 2 : 3;
    if (nn_check_labels(m, d, output_layer(m)) != 0) {
        nn_dataset_free(d);
        return -1;
    }
    return 0;
}

/* ---- one pass over a data set without training ----------------------------------------- */

typedef struct {
    double loss;
    double metrics[NN_MAX_METRICS];
    long *confusion;       /* evaluate --confusion: counts[true * classes + predicted], or NULL */
} nn_score;

/* The logs a progress line shows: loss, then the metrics; with prefix "val_"
 * their validation names. */
static void add_logs(nn_logs *l, const nn_model *m, bool val, double loss, const double *metrics)
{
    nn_logs_add(l, val ? "val_loss" : "loss", loss);
    for (int i = 0; i < m->n_metrics; i++)
        nn_logs_add(l, val ? m->metrics[i].val_name : m->metrics[i].name, metrics[i]);
}

/* A class index as stored, or the hot one of a one-hot row. */
static int class_of_label(const float *y, int size)
{
    return nn_label_class(y, size);
}

/* Counts each of n samples' (true, predicted) pair into s->confusion. */
static void count_confusion(const nn_model *m, const float *out, const float *y, int n,
                            nn_score *s)
{
    int classes = nn_class_count(m), width = nn_label_width(m);
    float *probs = nn_alloc((size_t)m->output_size, sizeof *probs), prob;
    for (int i = 0; i < n; i++) {
        nn_output_probs(m, out + (size_t)i * (size_t)m->output_size, probs, 1);
        int truth = class_of_label(y + (size_t)i * (size_t)width, width);
        s->confusion[truth * classes + nn_predicted_class(m, probs, &prob)]++;
    }
    free(probs);
}

/* Under mpirun each rank takes a contiguous share of every batch of n
 * samples: its first sample in the batch, and how many. */
static int rank_share(int n, int *first)
{
    int rank = nn_dist_rank(), size = nn_dist_size();
    *first = (int)((long)n * rank / size);
    return (int)((long)n * (rank + 1) / size) - *first;
}

/* A batch's sums from every rank: the loss's (sums[0]) then the metrics'
 * (delta), added into the running metric sums. */
static void reduce_batch_sums(const nn_model *m, double *delta, double *metric_sums)
{
    size_t n = nn_metrics_size(m);
    nn_dist_sum_doubles(delta, n + 1, "the sums of the loss and metrics");
    for (size_t i = 0; i < n; i++)
        metric_sums[i] += delta[i + 1];
}

/* Batches of b->capacity samples (the steps a progress bar counts), each
 * passing in parts of b->part (under mpirun, each rank its share of each
 * batch, the sums added over the ranks). p: the bar, or NULL. */
static int score(const nn_model *m, float *params, nn_batch *b, const nn_dataset *d,
                 nn_progress *p, nn_score *result)
{
    nn_pass pass = {0};
    int *idx = nn_alloc((size_t)b->capacity, sizeof *idx);
    int width = nn_label_width(m), step = 0;
    double loss = 0, penalty = nn_weight_penalty(m, params, NULL);
    size_t n_sums = nn_metrics_size(m);
    double *sums = nn_alloc(n_sums + 1, sizeof *sums);
    double *delta = nn_alloc(n_sums + 1, sizeof *delta);
    int rc = 0;
    for (int start = 0; start < d->n && rc == 0; start += b->capacity) {
        int n = d->n - start < b->capacity ? d->n - start : b->capacity, lo;
        int mine = rank_share(n, &lo);
        for (int s = 0; s < mine; s++)
            idx[s] = start + lo + s;
        if ((rc = batch_fill(b, m, d, idx, mine)) != 0)
            break;
        memset(delta, 0, (n_sums + 1) * sizeof *delta);
        for (int first = 0; first < mine; first += b->part) {
            int k = mine - first < b->part ? mine - first : b->part;
            const float *y = b->y + (size_t)first * (size_t)width;
            const float *out = m->forward(&pass, params, b->work,
                                          b->x + (size_t)first * (size_t)m->input_size, k);
            delta[0] += nn_loss(m, out, y, k, NULL) * k;
            if ((rc = nn_metrics_update(m, out, y, k, delta + 1)) != 0)
                break;
            if (result->confusion)
                count_confusion(m, out, y, k, result);
        }
        if (rc != 0)
            break;
        reduce_batch_sums(m, delta, sums);
        loss += delta[0];
        nn_metrics_results(m, sums, result->metrics);
        if (p && rc == 0) {
            nn_logs l = {0};
            add_logs(&l, m, false, loss / (start + n) + penalty, result->metrics);
            nn_progress_step(p, ++step, l.names, l.values, l.n);
        }
    }
    free(idx);
    free(sums);
    free(delta);
    result->loss = loss / d->n + penalty;
    return rc;
}

/* ---- the loop's pieces ---------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    const nn_model *m;
    const nn_options *o;
    nn_dataset train, val;
    bool has_val;
    float *params, *grads, *best;
    nn_optim opt;
    nn_batch batch;
    nn_train_state st;     /* where the loop is: what a checkpoint saves */
    nn_meta meta;          /* the class names every saved file holds */
    nn_rng rng;
    int *order;            /* the epoch's order of the training samples */
    float *sample_weights; /* the batch's, from class_weight, or NULL */
    double *step_sums;     /* a step's loss and metric sums on this rank, then on all */
    uint64_t step;         /* optimizer steps done, for dropout and augmentation */
    double epoch_start;    /* when the epoch began, less the time an earlier run spent on it */
    bool ran_out;          /* an epoch's data ended before its steps_per_epoch */
    nn_cb_state cb[NN_MAX_CALLBACKS];
    FILE *history;
    float base_lr;         /* the model's rate, or --learning-rate's */
    const nn_callback *scheduler, *plateau;   /* LearningRateScheduler, ReduceLROnPlateau */
    nn_report *report;     /* --report DIR (html_report.c) */
} Trainer;

/* A training series split at split_time leaves the windows after it as the
 * validation data (the course's x_valid), unless the model gives its own. */
static bool has_series_tail(const nn_model *m)
{
    return m->data.train.format == NN_DATA_SERIES && m->data.train.split_time >= 0;
}

static int load_series_tail(const nn_model *m, const nn_options *o, nn_dataset *d)
{
    nn_source tail = m->data.train;    /* not the training source itself: the part after the split */
    return load_data(m, &tail, o, 0, NULL, d);
}

static int load_train_data(Trainer *t)
{
    const nn_model *m = t->m;
    if (m->data.train.format == NN_DATA_NONE)
        return nn_error(m->data.model_file, "the model has no training data: give data: train: "
                                            "in the model file");
    if (load_data(m, &m->data.train, t->o, t->o->limit, NULL, &t->train) != 0)
        return -1;
    nn_meta_set_classes(&t->meta, m, t->train.class_names, t->train.n_classes);
    nn_meta_set_vocabulary(&t->meta, t->train.vocab);
    if (m->data.validation.format != NN_DATA_NONE) {
        if (load_data(m, &m->data.validation, t->o, 0, &t->train, &t->val) != 0)
            return -1;
        t->has_val = true;
    } else if (has_series_tail(m)) {
        if (load_series_tail(m, t->o, &t->val) != 0)
            return -1;
        t->has_val = true;
    } else if (m->data.validation_split > 0) {
        if (nn_dataset_split(&t->train, m->data.validation_split, &t->val) != 0)
            return -1;
        t->has_val = true;
    }
    return 0;
}

static const nn_callback *find_callback(const nn_model *m, nn_callback_kind kind)
{
    for (int i = 0; i < m->fit.n_callbacks; i++)
        if (m->fit.callbacks[i].kind == kind)
            return &m->fit.callbacks[i];
    return NULL;
}

/* The weights and state to start from: the checkpoint's (--resume), or
 * fresh ones (from --weights). */
static int read_start(Trainer *t, uint64_t seed)
{
    const nn_model *m = t->m;
    if (t->o->resume)
        return nn_load_weights(m, t->o->resume, t->params, NULL, &t->opt, &t->st);
    nn_init_params(m, t->params, seed);
    /* --weights: Keras's load_weights then fit: epoch 0, a fresh optimizer. */
    if (t->o->weights &&
        nn_load_start_weights(m, t->o->weights, t->params, t->o->skip_missing) != 0)
        return -1;
    return 0;
}

/* Under mpirun rank 0 alone read or made them: every rank gets its weights,
 * optimizer state and where the loop stands, so all step alike from here. */
static void share_start(Trainer *t)
{
    size_t n = t->m->n_params;
    nn_dist_bcast(t->params, n * sizeof *t->params, "sending the weights");
    for (int i = 0; i < NN_OPT_BUFFERS; i++)
        if (t->opt.state[i])
            nn_dist_bcast(t->opt.state[i], n * sizeof *t->opt.state[i],
                          "sending the optimizer state");
    nn_dist_bcast(&t->opt.iterations, sizeof t->opt.iterations, "sending the optimizer state");
    nn_dist_bcast(&t->opt.product, sizeof t->opt.product, "sending the optimizer state");
    nn_dist_bcast(&t->opt.product_steps, sizeof t->opt.product_steps,
                  "sending the optimizer state");
    double *sums = t->st.metric_sums;
    nn_dist_bcast(&t->st, sizeof t->st, "sending the training state");
    t->st.metric_sums = sums;
    nn_dist_bcast(sums, t->st.n_metric_sums * sizeof *sums, "sending the training state");
}

static int start_state(Trainer *t)
{
    const nn_model *m = t->m;
    nn_optimizer cfg = m->optimizer;
    if (t->o->learning_rate > 0)
        cfg.learning_rate = t->o->learning_rate;
    if (t->o->learning_rate > 0 && m->lr_schedule.kind != NN_LR_CONSTANT)
        return nn_error(m->data.model_file, "the model's learning rate is a schedule; "
                                            "--learning-rate cannot replace it");
    t->base_lr = cfg.learning_rate;
    t->scheduler = find_callback(m, NN_CB_LEARNING_RATE_SCHEDULER);
    t->plateau = find_callback(m, NN_CB_REDUCE_LR_ON_PLATEAU);
    nn_optim_init(&t->opt, m, &cfg);
    t->params = nn_alloc(m->n_params, sizeof *t->params);
    t->grads = nn_alloc(m->n_params, sizeof *t->grads);
    uint64_t seed = t->o->has_seed ? t->o->seed : m->fit.seed;
    t->st = (nn_train_state){.rng = seed, .seed = seed, .n_metric_sums = nn_metrics_size(m)};
    t->st.metric_sums = nn_alloc(t->st.n_metric_sums + 1, sizeof *t->st.metric_sums);
    if (t->plateau)
        nn_plateau_begin(t->plateau, &t->st.plateau);
    if (nn_dist_rank() == 0 && read_start(t, seed) != 0)
        return -1;
    t->opt.cfg.learning_rate = cfg.learning_rate;   /* begin_epoch_lr: st.lr's, if set */
    share_start(t);
    if (t->st.sample > t->train.n)
        return nn_error(t->o->resume, "the checkpoint stopped at sample %lld of an epoch of "
                                      "%d: it was written for other training data (--data, "
                                      "--limit?)", (long long)t->st.sample, t->train.n);
    t->step = (uint64_t)t->opt.iterations;
    t->order = nn_alloc((size_t)t->train.n, sizeof *t->order);
    if (m->fit.class_weight)
        t->sample_weights = nn_alloc((size_t)t->o->batch_size, sizeof *t->sample_weights);
    t->step_sums = nn_alloc(t->st.n_metric_sums + 1, sizeof *t->step_sums);
    return 0;
}

/* The epoch's order: a fresh permutation of 0..n-1, as Keras draws each
 * epoch, from the generator as the epoch begins (st.rng); so an epoch
 * resumed in its middle draws the order it had. */
static void begin_pass(Trainer *t)
{
    t->rng.state = t->st.rng;
    for (int i = 0; i < t->train.n; i++)
        t->order[i] = i;
    if (t->o->shuffle)
        nn_shuffle(t->order, t->train.n, &t->rng);
}

/* The epoch is over: the next one begins with the generator as it is now. */
static void end_epoch(Trainer *t)
{
    nn_train_state *st = &t->st;
    memset(st->metric_sums, 0, st->n_metric_sums * sizeof *st->metric_sums);
    *st = (nn_train_state){.epoch = st->epoch + 1, .rng = t->rng.state, .seed = st->seed,
                           .metric_sums = st->metric_sums, .n_metric_sums = st->n_metric_sums,
                           .lr = st->lr, .plateau = st->plateau};
    if (t->scheduler || t->plateau)
        st->lr = t->opt.cfg.learning_rate;
}

/* A learning rate as Python prints a float32: the fewest digits that read
 * back to it (1e-08, not 9.99999994e-09). */
static const char *lr_text(char buf[32], float lr)
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, 32, "%.*g", digits, lr);
        if (strtof(buf, NULL) == lr)
            break;
    }
    return buf;
}

/* The rate of epoch st.epoch, begun or resumed: where the epochs before it
 * left it, then the LearningRateScheduler's (Keras's on_epoch_begin); so a
 * resumed epoch recomputes the rate it had. */
static int begin_epoch_lr(Trainer *t)
{
    float lr = t->st.lr > 0 ? t->st.lr : t->base_lr;
    int epoch = (int)t->st.epoch;
    if (t->scheduler) {
        lr = t->scheduler->schedule(epoch, lr);
        if (!isfinite(lr))
            return nn_error(t->m->name, "the LearningRateScheduler's schedule gave %g at epoch %d",
                            lr, epoch);
        char text[32];
        if (t->scheduler->verbose && !t->o->quiet)
            printf("\nEpoch %d: LearningRateScheduler setting learning rate to %s.\n",
                   epoch + 1, lr_text(text, lr));
    }
    t->opt.cfg.learning_rate = lr;
    return 0;
}

/* Keras's: steps_per_epoch, or one pass over the data. */
static int steps_per_epoch(const Trainer *t, int batch)
{
    if (t->m->fit.steps_per_epoch)
        return t->m->fit.steps_per_epoch;
    return (t->train.n + batch - 1) / batch;
}

static void add_into(float *restrict sum, const float *restrict part, size_t n)
{
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        sum[i] += part[i];
}

/* BatchNormalization's moving statistics (the tensors a forward pass
 * changes, not the optimizer) moved on each rank with its own share of the
 * batch: every rank takes their mean. Summed in double, so that a frozen
 * tensor, equal on every rank, stays exactly as it was. */
static void average_moving_statistics(Trainer *t)
{
    const nn_model *m = t->m;
    int ranks = nn_dist_size();
    if (ranks == 1 || !m->whole_batches)
        return;
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *x = &m->tensors[i];
        if (x->trainable)
            continue;
        float *v = t->params + x->offset;
        double *d = nn_alloc(x->size, sizeof *d);
        for (size_t j = 0; j < x->size; j++)
            d[j] = v[j];
        nn_dist_sum_doubles(d, x->size, "averaging the moving statistics");
        for (size_t j = 0; j < x->size; j++)
            v[j] = (float)(d[j] / ranks);
        free(d);
    }
}

/* This rank's share of a batch of n (idx: the whole batch's samples):
 * forward, loss, backward, its gradient as its share of the whole batch's
 * mean (so that the sum over the ranks is the batch's gradient); its loss
 * and metric sums into t->step_sums. */
static int rank_gradients(Trainer *t, const int *idx, int n, bool *fused)
{
    const nn_model *m = t->m;
    nn_batch *b = &t->batch;
    int lo, mine = rank_share(n, &lo);
    idx += lo;
    *fused = false;
    memset(t->step_sums, 0, (t->st.n_metric_sums + 1) * sizeof *t->step_sums);
    if (mine == 0) {   /* a last batch smaller than the ranks */
        memset(t->grads, 0, m->n_params * sizeof *t->grads);
        return 0;
    }
    if (batch_fill(b, m, &t->train, idx, mine) != 0)
        return -1;
    if (t->sample_weights && nn_class_weights(m, b->y, mine, t->sample_weights) != 0)
        return -1;
    if (nn_augment_active(&m->data.augment) && m->input_rank == 3)
        nn_augment_batch(&m->data.augment, b->x, mine, m->input_shape[0], m->input_shape[1],
                         m->input_shape[2], t->st.seed, t->step, (uint64_t)lo);
    /* Equal parts of at most b->part samples; each part's gradient is its
     * share of the whole batch's mean, so their sum is the batch's gradient. */
    int parts = (mine + b->part - 1) / b->part, size = (mine + parts - 1) / parts;
    int width = nn_label_width(m);
    /* Under mpirun a whole batch's backward pass starts summing the gradients
     * of its last layers while it goes on (parts add up only at the end). */
    void (*ready)(const nn_pass *, size_t) =
        parts == 1 && nn_dist_size() > 1 ? nn_dist_grads_ready : NULL;
    /* Alone and in one part, a model that can takes the optimizer's step
     * inside backward, each tensor while its gradient is in the cache (ranks
     * must first add their gradients). */
    *fused = m->fused_update && parts == 1 && nn_dist_size() == 1;
    for (int first = 0; first < mine; first += size) {
        int k = mine - first < size ? mine - first : size;
        const float *x = b->x + (size_t)first * (size_t)m->input_size;
        const float *y = b->y + (size_t)first * (size_t)width;
        nn_pass pass = {1, t->st.seed, t->step, (uint64_t)(lo + first), ready, NULL};
        const float *out = m->forward(&pass, t->params, b->work, x, k);
        const float *weights = t->sample_weights ? t->sample_weights + first : NULL;
        t->step_sums[0] += nn_loss_weighted(m, out, y, weights, k, b->dout) * k;
        if (nn_metrics_update(m, out, y, k, t->step_sums + 1) != 0)
            return -1;
        for (size_t i = 0; i < (size_t)k * (size_t)m->output_size; i++)
            b->dout[i] *= (float)k / (float)n;
        float *grads = first == 0 ? t->grads : b->part_grads;
        if (*fused)
            pass.update = nn_optim_begin(&t->opt, t->params);
        m->backward(&pass, t->params, grads, b->work, x, b->dout, k);
        if (first > 0)
            add_into(t->grads, b->part_grads, m->n_params);
    }
    return 0;
}

/* forward, loss, backward, update; *mean_loss is the batch's loss (weighted by
 * class_weight), and the metrics' sums take the batch in. Under mpirun the
 * ranks share the batch and add their gradients before the one update they
 * all make alike. */
static int train_step(Trainer *t, const int *idx, int n, double *mean_loss)
{
    const nn_model *m = t->m;
    /* a schedule object: Keras's rate for the optimizer's iterations so far
     * (set before backward, which may take the step itself) */
    if (m->lr_schedule.kind != NN_LR_CONSTANT)
        t->opt.cfg.learning_rate = nn_lr_at(&m->lr_schedule, t->opt.iterations);
    bool fused;
    nn_dist_sum_begin(m, t->grads);
    if (rank_gradients(t, idx, n, &fused) != 0)
        return -1;
    nn_dist_sum_end("adding the gradients");
    average_moving_statistics(t);
    reduce_batch_sums(m, t->step_sums, t->st.metric_sums);
    double loss = t->step_sums[0];
    double penalty = nn_weight_penalty(m, t->params, t->grads);
    if (fused)
        nn_optim_end(&t->opt);
    else
        nn_optim_step(&t->opt, t->params, t->grads);
    t->step++;
    *mean_loss = loss / n + penalty;
    return 0;
}

static int save_checkpoint(Trainer *t)
{
    return t->o->save ? nn_save_weights(t->m, t->o->save, t->params, &t->meta, &t->opt, &t->st)
                      : 0;
}

/* The epoch's mean loss and metrics so far, as Keras's metrics average them. */
static nn_logs epoch_logs(const nn_model *m, const nn_train_state *st)
{
    double metrics[NN_MAX_METRICS];
    nn_metrics_results(m, st->metric_sums, metrics);
    nn_logs l = {0};
    add_logs(&l, m, false, st->loss_sum / (double)st->sample, metrics);
    return l;
}

/* One step of the epoch: the next batch of its order (smaller at its end). */
static int epoch_step(Trainer *t, int batch)
{
    nn_train_state *st = &t->st;
    int n = t->train.n - (int)st->sample < batch ? t->train.n - (int)st->sample : batch;
    double loss;
    if (nn_dist_test_fault((int64_t)t->step + 1) != 0 ||
        train_step(t, t->order + st->sample, n, &loss) != 0)
        return -1;
    if (!isfinite(loss))
        return nn_error(t->m->name, "the loss became %s at epoch %lld, step %lld; try a "
                                    "smaller learning rate", isnan(loss) ? "NaN" : "infinite",
                        (long long)st->epoch + 1, (long long)st->step + 1);
    st->step++;
    st->sample += n;
    st->loss_sum += loss * n;
    st->seconds = nn_now() - t->epoch_start;
    return 0;
}

/* Keras 2's DataHandler with a Sequence (ImageDataGenerator's iterators): an
 * epoch whose data ends before its steps_per_epoch ends there, and training
 * stops after it; the data is not reused. */
static void warn_ran_out(Trainer *t, int steps)
{
    int batch = t->o->batch_size, done = (int)t->st.step;
    nn_warning(t->m->name, "your input ran out of data; interrupting training: %d samples "
                           "make %d batches of %d, fewer than steps_per_epoch (%d). Give more "
                           "data%s, or steps_per_epoch at most %d",
               t->train.n, done, batch, steps, t->o->limit ? " (a larger --limit)" : "", done);
    t->ran_out = true;
}

/* Epoch st.epoch, from where st says it stands (its start, or where a
 * checkpoint left it) to its end; fills logs. 1 when interrupted first, -1
 * on a NaN loss or an error. */
static int run_epoch(Trainer *t, nn_logs *logs)
{
    nn_train_state *st = &t->st;
    int batch = t->o->batch_size, steps = steps_per_epoch(t, batch);
    nn_progress p;
    nn_progress_begin(&p, (int)st->epoch + 1, t->o->epochs, steps, t->o->quiet);
    nn_progress_skip(&p, (int)st->step);
    t->epoch_start = nn_now() - st->seconds;
    begin_pass(t);
    while (st->step < steps && st->sample < t->train.n && !interrupted) {
        if (epoch_step(t, batch) != 0)
            return -1;
        *logs = epoch_logs(t->m, st);
        nn_progress_step(&p, (int)st->step, logs->names, logs->values, logs->n);
        if (t->o->save_every && t->step % (uint64_t)t->o->save_every == 0 && save_checkpoint(t) != 0)
            return -1;
    }
    *logs = epoch_logs(t->m, st);
    bool finished = st->step >= steps || st->sample == t->train.n;
    if (finished && t->has_val) {
        nn_score v = {0};
        if (score(t->m, t->params, &t->batch, &t->val, NULL, &v) != 0)
            return -1;
        add_logs(logs, t->m, true, v.loss, v.metrics);
    }
    nn_progress_end(&p, logs->names, logs->values, logs->n);
    if (finished && st->step < steps)
        warn_ran_out(t, steps);
    return finished ? 0 : 1;
}

/* The history's columns after the epoch: loss, the metrics, val_loss, the
 * validation metrics (NaN without validation data), the learning rate the
 * epoch trained with (its last step's), the epoch's seconds. */
static nn_logs history_columns(const Trainer *t, const nn_logs *l, double seconds)
{
    const nn_model *m = t->m;
    nn_logs h = {0};
    nn_logs_add(&h, "loss", nn_logs_get(l, "loss"));
    for (int i = 0; i < m->n_metrics; i++)
        nn_logs_add(&h, m->metrics[i].name, nn_logs_get(l, m->metrics[i].name));
    nn_logs_add(&h, "val_loss", nn_logs_get(l, "val_loss"));
    for (int i = 0; i < m->n_metrics; i++)
        nn_logs_add(&h, m->metrics[i].val_name, nn_logs_get(l, m->metrics[i].val_name));
    nn_logs_add(&h, "lr", t->opt.cfg.learning_rate);
    nn_logs_add(&h, "seconds", seconds);
    return h;
}

/* One value of a log line: seconds to the millisecond, the learning rate as
 * Python prints a float32, the others to 6 digits. */
static void print_log(FILE *f, const char *name, double value)
{
    char text[32];
    if (strcmp(name, "lr") == 0)
        fprintf(f, ",%s", lr_text(text, (float)value));
    else
        fprintf(f, strcmp(name, "seconds") == 0 ? ",%.3f" : ",%.6g", value);
}

/* Flushed every epoch, so a long run's history is on disk as it goes and a
 * full disk stops the run at the epoch it happened. */
static int write_history(Trainer *t, int epoch, const nn_logs *l, double seconds)
{
    if (!t->history)
        return 0;
    nn_logs h = history_columns(t, l, seconds);
    fprintf(t->history, "%d", epoch + 1);
    for (int i = 0; i < h.n; i++)
        print_log(t->history, h.names[i], h.values[i]);
    fprintf(t->history, "\n");
    if (fflush(t->history) != 0 || ferror(t->history))
        return nn_error(t->o->history, "cannot write the history: %s", strerror(errno));
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keras's CSVLogger: epoch, then the logs in alphabetical order (lr among
 * them when a LearningRateScheduler or ReduceLROnPlateau put it there). */
static int csv_log(const nn_callback *c, int epoch, const nn_logs *l)
{
    FILE *f = fopen(c->filepath, epoch == 0 ? "w" : "a");
    if (!f)
        return nn_error(c->filepath, "cannot write the CSVLogger file");
    const char *names[NN_MAX_LOGS];
    memcpy(names, l->names, (size_t)l->n * sizeof *names);
    qsort(names, (size_t)l->n, sizeof *names, by_name);
    if (epoch == 0) {
        fprintf(f, "epoch");
        for (int i = 0; i < l->n; i++)
            fprintf(f, ",%s", names[i]);
        fprintf(f, "\n");
    }
    fprintf(f, "%d", epoch);
    for (int i = 0; i < l->n; i++)
        print_log(f, names[i], nn_logs_get(l, names[i]));
    fprintf(f, "\n");
    return fclose(f) == 0 ? 0 : nn_error(c->filepath, "cannot write the CSVLogger file");
}

static void announce_stop(const nn_callback *c, const nn_logs *l, int epoch)
{
    if (c->kind == NN_CB_STOP_AT_THRESHOLD)
        printf("\nReached %s %.4f (threshold %g) so cancelling training!\n", c->monitor,
               nn_logs_get(l, c->monitor), c->threshold);
    else
        printf("Epoch %d: early stopping\n", epoch + 1);
}

static void reduce_lr(Trainer *t, const nn_callback *c, const nn_logs *l, int epoch)
{
    double current = nn_logs_get(l, c->monitor);
    if (isnan(current))
        nn_warning(t->m->name, "ReduceLROnPlateau watches '%s', which this run does not "
                               "measure (validation data?)", c->monitor);
    float lr = t->opt.cfg.learning_rate;
    t->opt.cfg.learning_rate = nn_reduce_lr_on_plateau(c, &t->st.plateau, current, lr);
    char text[32];
    if (t->opt.cfg.learning_rate != lr && c->verbose && !t->o->quiet)
        printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s.\n", epoch + 1,
               lr_text(text, t->opt.cfg.learning_rate));
}

/* Runs every callback; returns 1 to stop, -1 on error. */
static int run_callbacks(Trainer *t, int epoch, const nn_logs *l)
{
    const nn_fit *fit = &t->m->fit;
    int stop = 0;
    nn_logs with_lr = *l;   /* as Keras's logs are once these callbacks ran */
    if (t->scheduler || t->plateau)
        nn_logs_add(&with_lr, "lr", t->opt.cfg.learning_rate);
    for (int i = 0; i < fit->n_callbacks; i++) {
        const nn_callback *c = &fit->callbacks[i];
        int act = nn_callback_epoch_end(c, &t->cb[i], l, epoch);
        bool writes = nn_dist_rank() == 0;   /* under mpirun only rank 0 writes files */
        if (c->kind == NN_CB_CSV_LOGGER) {
            if (writes && csv_log(c, epoch, &with_lr) != 0)
                return -1;
            continue;
        }
        if (c->kind == NN_CB_REDUCE_LR_ON_PLATEAU)
            reduce_lr(t, c, l, epoch);
        if (writes && (act & NN_CB_SAVE) && c->kind == NN_CB_MODEL_CHECKPOINT &&
            nn_save_weights(t->m, c->filepath, t->params, &t->meta, NULL, NULL) != 0)
            return -1;
        if ((act & NN_CB_SAVE) && c->kind == NN_CB_EARLY_STOPPING) {
            if (!t->best)
                t->best = nn_alloc(t->m->n_params, sizeof *t->best);
            memcpy(t->best, t->params, t->m->n_params * sizeof *t->best);
        }
        if (act & NN_CB_RESTORE_BEST) {
            memcpy(t->params, t->best, t->m->n_params * sizeof *t->best);
            printf("Restoring model weights from the end of the best epoch: %d.\n",
                   t->cb[i].best_epoch + 1);
        }
        if (act & NN_CB_STOP) {
            announce_stop(c, l, epoch);
            stop = 1;
        }
    }
    return stop;
}

static void trainer_free(Trainer *t)
{
    nn_dataset_free(&t->train);
    nn_dataset_free(&t->val);
    nn_meta_free(&t->meta);
    free(t->params);
    free(t->grads);
    free(t->best);
    free(t->order);
    free(t->sample_weights);
    free(t->step_sums);
    free(t->st.metric_sums);
    nn_optim_free(&t->opt);
    nn_batch_free(&t->batch);
    nn_report_free(t->report);
    if (t->history)
        fclose(t->history);
}

static int open_history(Trainer *t)
{
    if (!t->o->history)
        return 0;
    t->history = fopen(t->o->history, t->o->resume ? "a" : "w");
    if (!t->history)
        return nn_error(t->o->history, "cannot write the history");
    if (!t->o->resume) {
        nn_logs none = {0}, h = history_columns(t, &none, 0);
        fprintf(t->history, "epoch");
        for (int i = 0; i < h.n; i++)
            fprintf(t->history, ",%s", h.names[i]);
        fprintf(t->history, "\n");
    }
    return 0;
}

/* Ctrl-C: the checkpoint holds the weights after the last step done and
 * where in its epoch that step was, so that --resume goes on from there. */
static int stop_interrupted(Trainer *t)
{
    if (save_checkpoint(t) != 0)
        return -1;
    fprintf(stderr, "interrupted after step %lld of epoch %lld%s%s\n", (long long)t->st.step,
            (long long)t->st.epoch + 1, t->o->save ? "; weights saved to " : "",
            t->o->save ? t->o->save : "");
    return 130;
}

static int fit(Trainer *t)
{
    for (int i = 0; i < t->m->fit.n_callbacks; i++)
        nn_callback_begin(&t->m->fit.callbacks[i], &t->cb[i]);
    while (t->st.epoch < t->o->epochs) {
        nn_logs logs;
        if (begin_epoch_lr(t) != 0)
            return -1;
        int rc = interrupted ? 1 : run_epoch(t, &logs);
        if (rc != 0)
            return rc < 0 ? -1 : stop_interrupted(t);
        int epoch = (int)t->st.epoch;
        if (write_history(t, epoch, &logs, nn_now() - t->epoch_start) != 0)
            return -1;
        if (nn_report_epoch(&t->report, t->m, t->o, t->params, &t->train,
                            t->has_val ? &t->val : NULL, epoch, logs.names, logs.values, logs.n,
                            nn_now() - t->epoch_start) != 0)
            return -1;
        int stop = run_callbacks(t, epoch, &logs);
        end_epoch(t);
        if (stop < 0 || save_checkpoint(t) != 0)
            return -1;
        if (stop || t->ran_out)
            break;
    }
    return 0;
}

int nn_train(const nn_model *m, const nn_options *o)
{
    if (m->loss == NN_LOSS_NONE)
        return nn_error(m->data.model_file, "the model has no loss: give compile: loss: in the "
                                            "model file");
    /* Under mpirun only rank 0 writes files: the checkpoint, the history, the report. */
    nn_options mine = *o;
    if (nn_dist_rank() != 0)
        mine.save = mine.history = mine.report = NULL;
    o = &mine;
    Trainer t = {.m = m, .o = o};
    int rc = -1;
    if (load_train_data(&t) == 0 && start_state(&t) == 0 && open_history(&t) == 0) {
        nn_batch_init(&t.batch, m, o->batch_size);
        signal(SIGINT, on_sigint);
        rc = fit(&t);
        signal(SIGINT, SIG_DFL);
        if (rc == 0 && o->save && !o->quiet)
            printf("weights saved to %s\n", o->save);
    }
    trainer_free(&t);
    return rc;
}

/* ---- evaluate ------------------------------------------------------------------------- */

/* A class's name: the data's folders', the weight file's, the model file's,
 * or else its index. */
static const char *class_name(const nn_model *m, const nn_dataset *d, const nn_meta *meta, int k,
                              char *buf, size_t len)
{
    return nn_class_label(m, d, meta, k, buf, len);
}

/* "9 Ankle boot" where the class has a name, "9" where it has none. */
static void print_class(const nn_model *m, const nn_dataset *d, const nn_meta *meta, int k)
{
    char buf[16];
    const char *name = class_name(m, d, meta, k, buf, sizeof buf);
    printf(name == buf ? "%d" : "%d %s", k, name);
}

/* The first `count` samples: what the model says and what is true. */
static int show_predictions(const nn_model *m, float *params, nn_batch *b, const nn_dataset *d,
                            const nn_meta *meta, int count)
{
    count = count < d->n ? count : d->n;
    count = count < b->part ? count : b->part;
    int *idx = nn_alloc((size_t)count, sizeof *idx);
    for (int s = 0; s < count; s++)
        idx[s] = s;
    int rc = nn_dataset_batch(d, idx, count, m->data.rescale, b->x, NULL);
    free(idx);
    if (rc != 0)
        return -1;
    nn_pass pass = {0};
    const float *out = m->forward(&pass, params, b->work, b->x, count);
    float *probs = nn_alloc((size_t)m->output_size, sizeof *probs), prob;
    for (int s = 0; s < count; s++) {
        nn_output_probs(m, out + (size_t)s * (size_t)m->output_size, probs, 1);
        printf("test sample %d: predicted ", s);
        print_class(m, d, meta, nn_predicted_class(m, probs, &prob));
        printf(" (%.4f)", prob);
        if (d->labels) {
            printf(", true ");
            print_class(m, d, meta, class_of_label(d->labels + (size_t)s * (size_t)d->label_size,
                                                   d->label_size));
        }
        printf("\n");
    }
    free(probs);
    return 0;
}

/* evaluate --data FILE.csv: the file's samples in place of the model's test data. */
static int load_eval_file(const nn_model *m, const nn_options *o, nn_dataset *d)
{
    if (nn_load_data_file(m, o->data_dir, d) != 0)
        return -1;
    if (!d->labels) {
        nn_dataset_free(d);
        return nn_error(o->data_dir, "no label column: its %d column%s the model's input, so "
                        "evaluate has nothing to score against (predict gives the model's "
                        "answers)", m->input_size, m->input_size == 1 ? " is" : "s are");
    }
    nn_dataset_truncate(d, o->limit);
    if (nn_check_labels(m, d, output_layer(m)) != 0) {
        nn_dataset_free(d);
        return -1;
    }
    return 0;
}

static bool is_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Rows the true classes, columns the predicted ones, as sklearn's
 * confusion_matrix; each column as wide as its name or its largest count. */
static void print_confusion(const nn_model *m, const nn_dataset *d, const nn_meta *meta,
                            const long *counts)
{
    int k = nn_class_count(m), first = 0;
    char buf[16];
    for (int i = 0; i < k; i++) {
        int w = (int)strlen(class_name(m, d, meta, i, buf, sizeof buf));
        first = w > first ? w : first;
    }
    printf("confusion matrix (rows: true class, columns: predicted class):\n%*s", first, "");
    int *width = nn_alloc((size_t)k, sizeof *width);
    for (int j = 0; j < k; j++) {
        char count[24];
        width[j] = (int)strlen(class_name(m, d, meta, j, buf, sizeof buf));
        for (int i = 0; i < k; i++) {
            int w = snprintf(count, sizeof count, "%ld", counts[i * k + j]);
            width[j] = w > width[j] ? w : width[j];
        }
        printf("  %*s", width[j], class_name(m, d, meta, j, buf, sizeof buf));
    }
    for (int i = 0; i < k; i++) {
        printf("\n%-*s", first, class_name(m, d, meta, i, buf, sizeof buf));
        for (int j = 0; j < k; j++)
            printf("  %*ld", width[j], counts[i * k + j]);
    }
    printf("\n");
    free(width);
}

/* evaluate's data: --data FILE.csv, else the test set, else the validation data (given, or the
 * validation_split of the training set, as train splits it without
 * --limit), said in one line. */
static int evaluation_data(const nn_model *m, const nn_options *o, const nn_dataset *like,
                           nn_dataset *d)
{
    const nn_data *data = &m->data;
    if (is_file(o->data_dir))
        return load_eval_file(m, o, d);
    if (data->test.format != NN_DATA_NONE)
        return load_data(m, &data->test, o, o->limit, like, d);
    if (data->validation.format != NN_DATA_NONE) {
        printf("no test data: evaluating on the validation data (data: validation)\n");
        return load_data(m, &data->validation, o, o->limit, like, d);
    }
    if (has_series_tail(m)) {
        printf("no test data: evaluating on the validation data (the series from split_time)\n");
        return load_series_tail(m, o, d);
    }
    if (data->validation_split > 0 && data->train.format != NN_DATA_NONE) {
        nn_dataset train;
        if (load_data(m, &data->train, o, 0, like, &train) != 0)
            return -1;
        int rc = nn_dataset_split(&train, data->validation_split, d);
        nn_dataset_free(&train);
        if (rc == 0) {
            nn_dataset_truncate(d, o->limit);
            printf("no test data: evaluating on the validation data (the last %g of the "
                   "training data, validation_split)\n", (double)data->validation_split);
        }
        return rc;
    }
    return nn_error(m->data.model_file, "the model has no test or validation data: give data: "
                                        "test: in the model file, or evaluate --data FILE.csv");
}

/* Under mpirun each rank counted its share of the samples. */
static void sum_confusion(long *counts, size_t n)
{
    double *d = nn_alloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)counts[i];
    nn_dist_sum_doubles(d, n, "adding the confusion matrix");
    for (size_t i = 0; i < n; i++)
        counts[i] = (long)d[i];
    free(d);
}

/* Keras's evaluate(): a bar over the batches ending in the loss and metrics;
 * with --quiet only `loss: ... - accuracy: ...`. */
static int evaluate_with(const nn_model *m, const nn_options *o, const nn_dataset *d,
                         float *params, const nn_meta *meta)
{
    nn_batch b;
    nn_batch_init(&b, m, o->batch_size);
    int k = nn_class_count(m);
    nn_score s = {0};
    if (o->confusion)
        s.confusion = nn_alloc((size_t)k * (size_t)k, sizeof *s.confusion);
    nn_progress p;
    nn_progress_begin(&p, 0, 0, (d->n + b.capacity - 1) / b.capacity, o->quiet);
    int rc = score(m, params, &b, d, &p, &s);
    if (rc == 0 && s.confusion)
        sum_confusion(s.confusion, (size_t)k * (size_t)k);
    if (rc == 0) {
        nn_logs l = {0};
        add_logs(&l, m, false, s.loss, s.metrics);
        nn_progress_end(&p, l.names, l.values, l.n);
        for (int i = 0; o->quiet && i < l.n; i++)
            printf("%s%s: %.4f%s", i ? " - " : "", l.names[i], l.values[i],
                   i == l.n - 1 ? "\n" : "");
        if (o->show > 0)
            rc = show_predictions(m, params, &b, d, meta, o->show);
    }
    if (rc == 0 && s.confusion)
        print_confusion(m, d, meta, s.confusion);
    free(s.confusion);
    nn_batch_free(&b);
    return rc;
}

int nn_evaluate(const nn_model *m, const nn_options *o)
{
    if (m->loss == NN_LOSS_NONE)
        return nn_error(m->data.model_file, "the model has no loss to evaluate");
    if (o->confusion && nn_output_kind_of(m) == NN_OUTPUT_NUMBERS)
        return nn_error(m->name, "--confusion needs a classifier: the model's output is numbers, "
                                 "not classes");
    float *params = nn_alloc(m->n_params, sizeof *params);
    nn_meta meta = {0};
    nn_dataset d = {0};
    int rc = nn_load_weights(m, o->weights, params, &meta, NULL, NULL);
    nn_dataset trained = {0};          /* what the weight file says of the training set */
    if (rc == 0 && meta.n_words > 0)
        trained.vocab = nn_vocab_from_words(meta.vocabulary, meta.n_words);
    trained.class_names = meta.class_names, trained.n_classes = meta.n_classes;
    if (rc == 0)
        rc = evaluation_data(m, o, &trained, &d);
    nn_vocab_free(trained.vocab);
    if (rc == 0)
        rc = evaluate_with(m, o, &d, params, &meta);
    nn_dataset_free(&d);
    nn_meta_free(&meta);
    free(params);
    return rc;
}
