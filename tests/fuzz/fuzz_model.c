/* fuzz_model.c - nncc's front end (compiler/): the input is a model file, YAML
 * or a Keras to_json()/to_yaml() export, taken through main.c's pipeline up to
 * planning and emitting: yaml_load, model_from_yaml (keras.c for an export),
 * infer_shapes and check_model. (plan_model is left out: its Plan, a megabyte,
 * would be lost on every error it finds.)
 *
 * The front end exits on its first error (diag.c): fuzz.h's exit() jumps back
 * here, and yaml_release() frees the nodes. What model.c allocates outside the
 * YAML arena lives as long as nncc does, so this harness leaks a little per
 * input by design: leak detection is off, for make fuzz and for the replay
 * under make test SAN=1 alike. */
#include "fuzz.h"
#include "nncc.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Model m;
    static jmp_buf back;
    const char *path = fuzz_write_input(0, ".yaml", data, size);
    memset(&m, 0, sizeof m);
    fuzz_exit_jump = &back;
    fuzz_in_run = 1;
    if (setjmp(back) == 0) {
        model_from_yaml(&m, yaml_load(path), path);
        infer_shapes(&m);
        check_model(&m);
    }
    fuzz_in_run = 0;
    fuzz_exit_jump = NULL;
    yaml_release();
    return 0;
}
