# nncc - see README.md.
#   make              ./nncc, build/libnnrt.a, and generated/NAME for every models/NAME.yaml
#   make run          train and evaluate the default model (MODEL=models/NAME.yaml for another)
#   make test         every test (SAN=1: with AddressSanitizer and UBSan)
#   make fixtures     regenerate tests/ref/ (the PyTorch reference fixtures; needs torch)
#   make trainer MODEL=path/to/my.yaml [OUT=dir]
#   make bench        nncc against PyTorch on this machine
#   make fuzz         fuzz every file reader (FUZZ_SECONDS=N each; docs/fuzzing.md)
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
CC      ?= cc
OUT     ?= generated
MODEL   ?= models/fashion_mlp.yaml

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
# The trainers: every shape is a constant, so let the compiler vectorise for
# this CPU. For another CPU: make TRAINER_ARCH=-march=x86-64-v3 (or any -march).
# -fno-trapping-math: no program reads the floating-point exception flags, and
# without it GCC vectorises no loop with a comparison (the recurrent cells').
TRAINER_ARCH ?= -march=native
TRAINER_CFLAGS ?= -O3 $(TRAINER_ARCH) -ffp-contract=fast -fno-trapping-math

# SAN=1 builds into build/san, nncc included, so the normal build stays as it is.
ifeq ($(SAN),1)
  B := build/san
  NNCC := $(B)/nncc
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CFLAGS := -O1 -g
  TRAINER_CFLAGS := -O1 -g -ffp-contract=fast
  RUNTIME_OPT :=
else
  B := build
  NNCC := nncc
  SANFLAGS :=
  RUNTIME_OPT := -O3 $(TRAINER_ARCH) -ffp-contract=fast
endif

# The compiler is built without OpenMP; the runtime, the tests and the trainers with it.
BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP
ALL_CFLAGS := $(BASE_CFLAGS) -fopenmp
STB_CFLAGS := $(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
# Keras's .h5 files need Debian's libhdf5-dev, which `make` installs (tools/ensure-deps)
# like the other libraries. HDF5=0 builds without it: everything else works, and an .h5
# file gets an error saying what to install (runtime/h5.c). Evaluated late (=), after
# ensure-deps may have installed it.
HDF5 ?= 1
ifeq ($(HDF5),1)
  HDF5_CFLAGS = -DNN_HAVE_HDF5 $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
  HDF5_LIBS   = $(shell pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
endif
# MPI=1: the runtime (only runtime/dist.c calls MPI) is built with Open MPI into
# its own folder, $(B)/mpi, so that it never mixes with a plain build's objects,
# and trainers link it (mpicc's flags, read after ensure-deps installed it).
ifeq ($(MPI),1)
  RB := $(B)/mpi
  MPI_CFLAGS = -DNN_HAVE_MPI $(shell mpicc --showme:compile)
  MPI_LIBS   = $(shell mpicc --showme:link)
else
  RB := $(B)
endif
RT_LIBS     = -lstb -lyaml -lz -lm -fopenmp $(HDF5_LIBS) $(MPI_LIBS)

COMPILER_SRC := $(filter-out compiler/embed.c,$(wildcard compiler/*.c))
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(B)/compiler/%.o) $(B)/compiler/templates.o
RUNTIME_SRC  := $(wildcard runtime/*.c)
RUNTIME_OBJ  := $(RUNTIME_SRC:runtime/%.c=$(RB)/runtime/%.o)
# What nncc takes from the runtime: .npy/.npz and Keras .h5 files (for --inference
# --weights, and a Keras model_config), the summary table, and the error reports
# both use. libc, zlib and (when found) libhdf5 only.
NNCC_RT_OBJ  := $(B)/runtime/npz.o $(B)/runtime/h5.o $(B)/runtime/summary.o $(B)/runtime/report.o
TEMPLATES    := $(sort $(wildcard templates/*.c.in))
MODELS       := $(wildcard models/*.yaml)
TRAINERS     := $(MODELS:models/%.yaml=generated/%)
TEST_SRC     := $(wildcard tests/test_*.c)
TESTS        := $(TEST_SRC:tests/%.c=$(RB)/tests/%)
LIBNNRT      := $(RB)/libnnrt.a

.PHONY: all deps test-deps run test fixtures trainer bench install clean fuzz FORCE
.SECONDARY:

all: deps nncc $(LIBNNRT) $(TRAINERS)

deps:
	@HDF5=$(HDF5) tools/ensure-deps build
	@$(if $(filter 1,$(MPI)),tools/ensure-deps mpi)

test-deps: deps
	@tools/ensure-deps test

# ---- the compiler ------------------------------------------------------------------
# Linked without libnnrt, OpenMP and stb: the three runtime objects above are all it needs.
$(NNCC): $(COMPILER_OBJ) $(NNCC_RT_OBJ)
	$(CC) $(BASE_CFLAGS) -o $@ $^ -lyaml -lz -lm $(HDF5_LIBS)

$(B)/compiler/%.o: compiler/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Iruntime -c -o $@ $<

# Templates are built into nncc, so an installed nncc needs no files beside it.
$(B)/embed: compiler/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -O1 -o $@ $<

$(B)/compiler/templates.c: $(B)/embed $(TEMPLATES)
	$(B)/embed $(TEMPLATES) > $@.tmp && mv $@.tmp $@

$(B)/compiler/templates.o: $(B)/compiler/templates.c
	$(CC) $(BASE_CFLAGS) -c -o $@ $<

# ---- the runtime -------------------------------------------------------------------
$(LIBNNRT): $(RUNTIME_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The runtime's loops over whole buffers (optimizers, losses, batches) run
# every step: they are built for this CPU too.
$(RB)/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(RUNTIME_OPT) $(STB_CFLAGS) $(MPI_CFLAGS) $(if $(filter %/h5.o,$@),$(HDF5_CFLAGS)) -c -o $@ $<

# optim.c's update rules take square roots: without errno GCC vectorises them
# (a square root or a quotient has the same bits in a vector lane).
$(B)/runtime/optim.o: RUNTIME_OPT += -fno-math-errno

# ...except those nncc links as well: built as the compiler is (they run no
# step's loops), so that nncc holds no OpenMP and no code for this CPU only.
$(NNCC_RT_OBJ): $(B)/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(if $(filter $(B)/runtime/h5.o,$@),$(HDF5_CFLAGS)) -c -o $@ $<

# h5.o is rebuilt when HDF5 changes (make HDF5=0, then make): the stamp file
# is rewritten only when its value differs.
$(B)/hdf5.config: FORCE
	@mkdir -p $(B)
	@echo 'HDF5=$(HDF5)' | cmp -s - $@ || echo 'HDF5=$(HDF5)' > $@
$(B)/runtime/h5.o $(RB)/runtime/h5.o: $(B)/hdf5.config
# Likewise trainers are relinked when MPI changes (make MPI=1, then make).
$(B)/mpi.config: FORCE
	@mkdir -p $(B)
	@echo 'MPI=$(MPI)' | cmp -s - $@ || echo 'MPI=$(MPI)' > $@
FORCE:

# ---- trainers ----------------------------------------------------------------------
# generated/NAME.c is kept in the repo; it is remade when the model or nncc changes.
generated/%.c: models/%.yaml nncc
	./nncc $< -o $@

generated/%: generated/%.c $(LIBNNRT) runtime/nnrt.h $(B)/mpi.config
	$(CC) -std=c11 $(WARN) $(TRAINER_CFLAGS) $(SANFLAGS) -fopenmp -Iruntime -o $@ $< $(LIBNNRT) $(RT_LIBS)

trainer: deps $(NNCC) $(LIBNNRT)
	@test -n "$(MODEL)" || { echo "usage: make trainer MODEL=path/to/model.yaml [OUT=dir]"; exit 2; }
	@mkdir -p $(OUT)
	./$(NNCC) $(MODEL) -o $(OUT)/$(basename $(notdir $(MODEL))).c
	$(CC) -std=c11 $(WARN) $(TRAINER_CFLAGS) $(SANFLAGS) -fopenmp -Iruntime \
	  -o $(OUT)/$(basename $(notdir $(MODEL))) $(OUT)/$(basename $(notdir $(MODEL))).c $(LIBNNRT) $(RT_LIBS)

# ---- the main job ------------------------------------------------------------------
run: all
	@tools/ensure-deps run
	@tools/run-model $(MODEL)

# ---- tests -------------------------------------------------------------------------
$(RB)/tests/%: tests/%.c tests/testutil.h $(filter-out $(B)/compiler/main.o,$(COMPILER_OBJ)) $(LIBNNRT) | test-deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(STB_CFLAGS) -DNN_RT_LIBS='"$(RT_LIBS)"' -Iruntime -Icompiler -o $@ $< \
	  $(filter-out $(B)/compiler/main.o,$(COMPILER_OBJ)) $(LIBNNRT) -lcmocka -lyaml $(RT_LIBS)

test: test-deps $(NNCC) $(LIBNNRT) $(if $(filter 1,$(SAN)),,$(TRAINERS)) $(TESTS)
	@NNCC=./$(NNCC) NNCC_BUILD=$(RB) SAN=$(SAN) tools/run-tests $(TESTS)

# ---- fuzzing (docs/fuzzing.md) --------------------------------------------------------
# make test replays every input under tests/fuzz/regressions/HARNESS/ through its
# harness, linked with tests/fuzz/replay.c instead of libFuzzer (tests/test_fuzz.c).
FUZZERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAYS := $(FUZZERS:%=$(B)/fuzz/replay_%)

$(B)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(filter-out $(B)/compiler/main.o,$(COMPILER_OBJ)) $(LIBNNRT)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(STB_CFLAGS) -Iruntime -Icompiler -o $@ $< tests/fuzz/replay.c \
	  $(filter-out $(B)/compiler/main.o,$(COMPILER_OBJ)) $(LIBNNRT) $(RT_LIBS) -ldl

$(B)/tests/test_fuzz: $(REPLAYS)

# make fuzz [FUZZ_SECONDS=N] [FUZZERS="csv npz"]: every harness with libFuzzer under
# ASan and UBSan, one after the other, N seconds each, niced; the corpora stay in
# build/fuzz/corpus/ so that the next run goes on where this one stopped.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -std=c11 -D_DEFAULT_SOURCE -DNN_FUZZING $(WARN) -Wno-missing-field-initializers -Wno-pass-failed -O1 -g -fno-omit-frame-pointer -fopenmp \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined $(STB_CFLAGS)
FUZZ_RT_OBJ  := $(RUNTIME_SRC:runtime/%.c=$(FUZZ_DIR)/obj/runtime/%.o)
FUZZ_CC_OBJ  := $(filter-out $(FUZZ_DIR)/obj/compiler/main.o,$(COMPILER_SRC:compiler/%.c=$(FUZZ_DIR)/obj/compiler/%.o)) \
                $(FUZZ_DIR)/obj/compiler/templates.o
FUZZ_BINS    := $(FUZZERS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/runtime/%.o: runtime/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(HDF5_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/compiler/%.o: compiler/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Iruntime -c -o $@ $<

$(FUZZ_DIR)/obj/compiler/templates.o: build/compiler/templates.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/stb_image.o: tests/fuzz/stb_image.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c -o $@ $<

# Archives, so that a harness links (and libFuzzer counts the edges of) only what it calls.
$(FUZZ_DIR)/libcompiler.a: $(FUZZ_CC_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/libnnrt.a: $(FUZZ_RT_OBJ) $(FUZZ_DIR)/obj/stb_image.o
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libcompiler.a $(FUZZ_DIR)/libnnrt.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Iruntime -Icompiler -o $@ $< \
	  $(FUZZ_DIR)/libcompiler.a $(FUZZ_DIR)/libnnrt.a $(RT_LIBS) -ldl

fuzz: deps $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz $(FUZZERS)

# The reference fixtures that tests/test_ref.c checks against: PyTorch and numpy,
# Debian's, so /usr/bin/python3, not whatever python3 is first on PATH. They are
# committed, so make test needs no Python.
fixtures:
	@tools/ensure-deps fixtures
	/usr/bin/python3 tests/ref/gen.py

# ---- benchmarks (not tests: they measure, they do not assert) ---------------------------
bench: all
	@tools/ensure-deps bench
	@bench/run

# ---- install -----------------------------------------------------------------------
install: nncc $(LIBNNRT)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 nncc $(DESTDIR)$(PREFIX)/bin/nncc
	install -m 644 $(LIBNNRT) $(DESTDIR)$(PREFIX)/lib/libnnrt.a
	install -m 644 runtime/nnrt.h $(DESTDIR)$(PREFIX)/include/nnrt.h
	install -d $(DESTDIR)$(PREFIX)/share/nncc/templates
	install -m 644 $(TEMPLATES) $(DESTDIR)$(PREFIX)/share/nncc/templates/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@HDF5_LIBS@|$(HDF5_LIBS)|' -e 's|@VERSION@|$(shell sed -n 's/^#define NNRT_VERSION "\(.*\)"/\1/p' runtime/nnrt.h)|' \
	  tools/nnrt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nnrt.pc

clean:
	rm -rf build nncc $(TRAINERS)

-include $(wildcard $(B)/*/*.d $(RB)/*/*.d)
