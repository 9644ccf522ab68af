/* cli.h - what the mixrt subcommands share: the error/note lines of the CLI contract,
 * the one parser for build options, input files and seeded random inputs, output
 * files and summaries, and opening a model as an engine (.onnx built, .plan loaded). */
#ifndef MIXRT_TOOLS_CLI_H
#define MIXRT_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "mixrt/mixrt.h"
#include "mixrt/mixrt_engine.h"
#include "mixrt/mixrt_onnx.h"

#define CLI_MAX_INPUTS 256
#define CLI_MAX_SHAPES 64
#define CLI_MAX_LAYER_PRECISIONS 64

/* ---- the contract's lines (stderr) ---- */
/* "mixrt: error: <msg> (see 'mixrt help')" and exit status 2. */
void cli_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* One line "mixrt: error: <msg>" (control bytes escaped as \xNN); returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The context's last message as the error line, after "prefix: " when prefix is not NULL. */
int cli_fail_ctx(mixrt_context_t ctx, mixrt_status st);
int cli_fail_ctx_prefixed(mixrt_context_t ctx, mixrt_status st, const char *prefix);
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Notes can be silenced (bench prepares the same inputs for several engines). */
extern bool cli_notes_quiet;

bool cli_has_suffix(const char *s, const char *suffix);
bool cli_is_plan(const char *path);
/* If argv[*i] is `flag VALUE` or `flag=VALUE`, returns VALUE (advancing *i past it);
 * otherwise NULL. A flag without its value is a usage error. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *flag);
/* Parses a whole non-negative decimal number for flag (usage error otherwise). */
unsigned long long cli_parse_u64(const char *flag, const char *val);
double cli_parse_double(const char *flag, const char *val, double min);

/* ---- build options (DESIGN.md "The mixrt command line") ---- */
struct cli_build_args {
    struct mixrt_build_options opts;
    struct mixrt_layer_precision layer_precisions[CLI_MAX_LAYER_PRECISIONS];
    struct mixrt_input_shape shapes[CLI_MAX_SHAPES];
    char *owned[CLI_MAX_LAYER_PRECISIONS + CLI_MAX_SHAPES]; /* glob and name copies */
    int n_owned;
    const char *precision_list; /* as given, or NULL */
    /* The first option given that only a build can use (everything but --shape and
     * --verbose, which also shape random inputs and logging), for "not with a .plan". */
    const char *first_build_only;
    int n_given;
};
void cli_build_args_init(struct cli_build_args *b);
void cli_build_args_free(struct cli_build_args *b);
/* If argv[*i] is a build option, consumes it (and its value), returns true. A bad value
 * is a usage error naming the flag and the value. */
bool cli_build_args_parse(struct cli_build_args *b, int argc, char **argv, int *i);
/* "fp32,bf16" for a precision bit set (static buffer per call site is the caller's). */
void cli_precisions_str(char *buf, size_t size, unsigned precisions);
/* The --help text of the build options. */
extern const char cli_build_options_help[];

/* ---- model I/O, uniform over models and engines ---- */
struct cli_io {
    size_t n_in, n_out;
    struct mixrt_value_info in[CLI_MAX_INPUTS];
    struct mixrt_value_info *out; /* n_out entries (malloc) */
};
int cli_io_from_model(mixrt_model_t m, struct cli_io *io);
int cli_io_from_engine(mixrt_engine_t e, struct cli_io *io);
void cli_io_free(struct cli_io *io);

struct cli_input_arg {
    char name[512];
    const char *path;
};
/* Parses --input NAME=PATH (usage error when malformed). */
void cli_input_arg_parse(const char *val, struct cli_input_arg *out);

struct cli_inputs {
    size_t n;
    const char *names[CLI_MAX_INPUTS]; /* point into the cli_io */
    struct mixrt_tensor *t[CLI_MAX_INPUTS];
};
/* Fills `in` for io's inputs: --input files (loaded and adapted: f32 .npy rounded into
 * bf16/f16 inputs, u16 .npy taken as raw bf16 bits) and, for inputs not given and
 * without an initializer, seeded random data. Random data is a function of (seed, input
 * name) only, made in f32 and rounded to the input's dtype, so twins of one network in
 * different dtypes see the same values. Returns 0, or 1 after printing the error line. */
int cli_inputs_prepare(mixrt_context_t ctx, const struct cli_io *io, const struct cli_input_arg *args, int n_args,
                       const struct mixrt_input_shape *shapes, int n_shapes, unsigned long long seed,
                       struct cli_inputs *in);
void cli_inputs_free(mixrt_context_t ctx, struct cli_inputs *in);

/* Outputs to DIR/<name>.npy|.pb (bf16 widened to f32 in .npy, with a note), or one
 * summary line per output on stdout when out_dir is NULL. Returns 0 or 1 (error printed). */
int cli_outputs_write(mixrt_context_t ctx, const struct cli_io *io, struct mixrt_tensor **outputs,
                      const char *out_dir, const char *fmt, bool verbose);
void cli_print_summary(const char *name, const struct mixrt_tensor *t);

/* ---- engines ---- */
/* For each input the ONNX file model declares with open dims (a symbolic batch, unknown
 * sizes) and that no --shape names, adds a --shape and says so: the --input file's dims, or
 * without a file those of the seeded random input (1 in each open dim). Call before the
 * build, which then plans for the shapes the command runs (static memory plan, packed
 * weights, every fusion that needs known dims). Reads only the file's graph inputs (see
 * cli.c); plans, inputs without a declared shape, unreadable files and malformed models are
 * left alone (the build or the run reports those). Returns how many it added. */
int cli_shapes_for_open_inputs(mixrt_context_t ctx, struct cli_build_args *b, const char *model,
                               const struct cli_input_arg *args, int n_args);
/* Opens path as an engine: a .plan is loaded (build-only options are then a usage error),
 * anything else is built with b's options. *build_ms gets the build/load time. Returns 0
 * or 1 (error printed). */
int cli_engine_open(mixrt_context_t ctx, const char *path, const struct cli_build_args *b, mixrt_engine_t *out,
                    double *build_ms);
/* "fp32", "fp16", "bf16", "f64"..., "-" for UNDEFINED (a layer without float data). */
const char *cli_precision_name(mixrt_dtype dt);
/* The precision of the layer that runs planned-graph node index `node` (layers are
 * numbered in execution order, nodes by graph index). */
mixrt_dtype cli_node_precision(mixrt_engine_t e, int node);
/* Two lines: layers per precision and per kernel ("  precision: fp32 12, bf16 3"). */
void cli_print_layer_totals(mixrt_engine_t e, const char *indent);
/* Creates a context (log level from --verbose); returns 0 or 1 (error printed). */
int cli_context_create(bool verbose, mixrt_context_t *out);
double cli_now_ms(void);
/* JSON string literal of s (escaped) to f. */
void cli_json_string(FILE *f, const char *s);

#endif
