/* test_layers_lambda.c - the Lambda layer (compiler/layer_lambda.c,
 * templates/lambda*.c.in): elementwise arithmetic on x, its backward the
 * derivative nncc takes of the expression.
 *
 * Forward and backward at batch sizes 1, 5, 6, 7 and 13 are checked against
 * PyTorch (torch evaluating the same text, autograd for the gradient) by
 * test_ref, on tests/ref/lambda_*. Here:
 *   inference  those fixtures through nncc --inference, built as C99 without
 *              OpenMP, against the reference;
 *   training   a model with Lambda layers between Dense ones passes gradcheck
 *              and its loss falls.
 * The expression's own parsing, C and derivatives are test_expr's; the
 * errors (an unknown name, a Keras export's bytecode) are files in
 * tests/cases/lambda_*, run by test_compiler. */
#include "testutil.h"

static void inference(void **state)
{
    (void)state;
    static const char *const fixtures[] = {"lambda_scale", "lambda_poly", "lambda_precedence"};
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
        print_message("%-18s --inference: max relative difference %.3g\n", fixtures[i],
                      check_fixture_inference(fixtures[i]));
}

/* y = x0 * x1 needs the Dense layers to learn through squares and exp. */
static const char trained_model[] =
    "input_shape: [2]\n"
    "layers:\n"
    "  - Dense: {units: 6}\n"
    "  - Lambda: {expression: \"exp(-x ** 2 / 2) + sqrt(x * x + 1) / 4\"}\n"
    "  - Lambda: \"x * 10 - 5\"\n"
    "  - Dense: {units: 1}\n"
    "compile: {optimizer: {name: adam, learning_rate: 0.01}, loss: mse}\n"
    "data:\n"
    "  train:\n"
    "    format: inline\n"
    "    x: [[0.5, 1], [1, -1], [-0.5, 0.5], [0.2, 0.3], [-1, -1], [0.8, -0.2], [0, 1], [1, 1]]\n"
    "    y: [[0.5], [-1], [-0.25], [0.06], [1], [-0.16], [0], [1]]\n"
    "fit: {epochs: 60, batch_size: 4, seed: 2}\n";

static void model_trains(void **state)
{
    (void)state;
    assert_gradcheck_and_learns("lambdas", trained_model, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inference),
        cmocka_unit_test(model_trains),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
