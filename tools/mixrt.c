/* mixrt.c - the mixrt command line (contract in DESIGN.md): dispatch, help and `run`.
 * Every failure ends in one line "mixrt: error: ..." on stderr and exit status 1 (2 for
 * usage errors); notes go to stderr as "mixrt: note: ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f) {
    fputs("usage: mixrt <command> [options]\n"
          "\n"
          "commands:\n"
          "  build MODEL.onnx -o MODEL.plan [build options]\n"
          "      Compiles the model into an engine for the target and saves it as a plan file;\n"
          "      prints the layers per precision and kernel, the build time and the plan size.\n"
          "  run MODEL.onnx|MODEL.plan [--input NAME=PATH ...] [--output-dir DIR] [--output-format npy|pb]\n"
          "                 [--seed N] [--reference] [build options, when MODEL is .onnx]\n"
          "      Runs the model through an engine (a .onnx is built first with the build options;\n"
          "      default fp32, weak typing: a bf16 model computes in f32 inside and casts at its\n"
          "      I/O). --reference runs a .onnx with the CPU reference executor instead.\n"
          "      Inputs from .pb (ONNX TensorProto, exact) or .npy files (f32 into a bf16/f16 input is\n"
          "      rounded, uint16 into bf16 is raw bits); inputs not given get seeded random data\n"
          "      (made in f32, rounded to the input's dtype; a note says so). Outputs go to\n"
          "      DIR/<output name>.npy|.pb (bf16 widened to f32 in .npy), or are summarized on stdout.\n"
          "  inspect MODEL.onnx|MODEL.plan [build options]\n"
          "      A .onnx alone: inputs, outputs, every layer (op, opset, inferred dtypes and shapes,\n"
          "      kernel) and the operators this build cannot run. A .plan, or a .onnx with any build\n"
          "      option (built in memory): the planned layers with dtypes, shapes, precision, kernel\n"
          "      and measured time share, totals per precision and kernel, target and build id.\n"
          "  check MODEL.onnx|MODEL.plan [--model MODEL.onnx] [build options] [--input NAME=PATH ...]\n"
          "                 [--seed N] [--tolerance T] [--json FILE]\n"
          "      Runs the engine and the f64 reference engine on the same inputs; per output the\n"
          "      relative-norm error ||a-b||/||b||, max abs error and PASS/FAIL against T (default\n"
          "      2e-2 with bf16/fp16 enabled, else 1e-4; FAIL exits 1). Then the per-layer trace and\n"
          "      the first layer where the error jumps (output error > 10x its inputs' and > 1e-3),\n"
          "      with the top 5 jumps. A .plan needs --model (the .onnx it was built from).\n"
          "  bench MODEL.onnx|MODEL.plan [build options] [--input NAME=PATH ...] [--seed N]\n"
          "                 [--iterations N] [--warmup-ms MS] [--duration-s S] [--threads N]\n"
          "                 [--compare SPEC;SPEC;...] [--peer ort] [--profile] [--json FILE]\n"
          "                 [--report FILE.html]\n"
          "      Warms up for MS ms (default 200), then runs N times or for S seconds (default 3,\n"
          "      at least 10 runs); latency min/mean/median/p90/p95/p99/max and throughput.\n"
          "      --compare: each SPEC is [MODEL@]PRECISIONS[:strong] (e.g. 'fp32;m_bf16.onnx@fp32,bf16')\n"
          "      or a PLAN file, each built or loaded once and run interleaved; ratio = median /\n"
          "      median of the first row.\n"
          "      --threads N sets OMP_NUM_THREADS before any engine exists. --json FILE writes the\n"
          "      object of DESIGN.md (mixrt_version, machine, model, rows[...]). --peer ort adds\n"
          "      ONNX Runtime (npm onnxruntime-node) as a row of the same run, outputs checked;\n"
          "      --profile times every layer; --report writes a self-contained HTML page.\n"
          "      'mixrt bench --help' has the details.\n"
          "  --version    prints the version\n"
          "  help         prints this text\n"
          "\n",
          f);
    fputs(cli_build_options_help, f);
    fputs("  With a .plan only --shape (shapes of random inputs) and --verbose apply; the others are\n"
          "  a usage error, since the plan is built already.\n",
          f);
    fputs("\nExit status: 0 on success, 1 on failure (one line 'mixrt: error: ...'), 2 on usage errors.\n", f);
}

/* `mixrt run`: through an engine (a .onnx is built with the build options, a .plan
 * loaded), or with --reference through the CPU reference executor, as before engines.
 * Both share the input preparation and the output writing. */
static int run_model(const char *model_path, bool reference, const struct cli_build_args *b,
                     const struct cli_input_arg *in_args, int n_in_args, unsigned long long seed, const char *out_dir,
                     const char *fmt) {
    mixrt_context_t ctx = NULL;
    mixrt_model_t model = NULL;
    mixrt_engine_t engine = NULL;
    struct cli_io io = {0};
    struct cli_inputs in = {0};
    struct mixrt_tensor **outputs = NULL;
    mixrt_status st;
    int rc = 1;
    struct cli_build_args bs = *b; /* open inputs may add shapes (b owns its own; bs's extra names freed below) */
    bs.opts.shapes = bs.shapes;
    if (cli_context_create(b->opts.verbose, &ctx)) return 1;
    if (reference) {
        st = mixrt_model_load(ctx, model_path, &model);
        if (st != MIXRT_STATUS_OK) {
            rc = cli_fail_ctx(ctx, st);
            goto done;
        }
        if (cli_io_from_model(model, &io)) goto done;
    } else {
        cli_shapes_for_open_inputs(ctx, &bs, model_path, in_args, n_in_args);
        if (cli_engine_open(ctx, model_path, &bs, &engine, NULL)) goto done;
        if (cli_io_from_engine(engine, &io)) goto done;
    }
    if (cli_inputs_prepare(ctx, &io, in_args, n_in_args, bs.shapes, (int)bs.opts.n_shapes, seed, &in)) goto done;
    outputs = calloc(io.n_out ? io.n_out : 1, sizeof(*outputs));
    if (!outputs) {
        rc = cli_fail("out of memory");
        goto done;
    }
    const struct mixrt_tensor *const *ins = (const struct mixrt_tensor *const *)in.t;
    st = reference ? mixrt_model_run(model, in.n, in.names, ins, outputs)
                   : mixrt_engine_run(engine, in.n, in.names, ins, outputs);
    if (st != MIXRT_STATUS_OK) {
        rc = cli_fail_ctx(ctx, st);
        goto done;
    }
    rc = cli_outputs_write(ctx, &io, outputs, out_dir, fmt, b->opts.verbose);
done:
    if (outputs)
        for (size_t i = 0; i < io.n_out; i++) mixrt_tensor_destroy(ctx, outputs[i]);
    free(outputs);
    cli_inputs_free(ctx, &in);
    cli_io_free(&io);
    mixrt_model_destroy(model);
    mixrt_engine_destroy(engine);
    mixrt_context_destroy(ctx);
    for (int i = b->n_owned; i < bs.n_owned; i++) free(bs.owned[i]);
    return rc;
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *out_dir = NULL, *fmt = "npy";
    static struct cli_input_arg in_args[CLI_MAX_INPUTS];
    struct cli_build_args b;
    int n_in_args = 0;
    bool reference = false;
    unsigned long long seed = 1;
    cli_build_args_init(&b);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val;
        if (cli_build_args_parse(&b, argc, argv, &i)) continue;
        if ((val = cli_opt_value(argc, argv, &i, "--input"))) {
            if (n_in_args >= CLI_MAX_INPUTS) cli_die_usage("too many --input options");
            cli_input_arg_parse(val, &in_args[n_in_args++]);
        } else if ((val = cli_opt_value(argc, argv, &i, "--output-dir"))) {
            out_dir = val;
        } else if ((val = cli_opt_value(argc, argv, &i, "--output-format"))) {
            fmt = val;
            if (strcmp(fmt, "npy") && strcmp(fmt, "pb")) cli_die_usage("--output-format must be npy or pb, not '%s'", fmt);
        } else if ((val = cli_opt_value(argc, argv, &i, "--seed"))) {
            seed = cli_parse_u64("--seed", val);
        } else if (!strcmp(a, "--reference")) {
            reference = true;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage("unknown option '%s' for run", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_die_usage("unexpected argument '%s'", a);
        }
    }
    if (!model_path) cli_die_usage("run needs a model file");
    int rc;
    if (reference) {
        if (cli_is_plan(model_path))
            cli_die_usage("--reference runs a .onnx model with the reference executor, not the plan '%s'", model_path);
        if (b.first_build_only)
            cli_die_usage("%s is a build option; --reference runs the model without building an engine",
                          b.first_build_only);
    }
    rc = run_model(model_path, reference, &b, in_args, n_in_args, seed, out_dir, fmt);
    cli_build_args_free(&b);
    return rc;
}

/* oneDNN's thread runtime (libgomp) reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when
 * it is loaded, before main. Its default spins idle workers for about 8 ms after each
 * parallel region; on a machine whose vCPUs share a core that spinning slows every serial
 * kernel (measured: BERT-base 2.6 s -> 0.76 s per run once it stopped). With no spinning at
 * all, every region wakes its workers from sleep: ResNet-50 and MobileNetV2 then lose 10-30 %
 * between layers. So, unless the user chose either variable: PASSIVE with a short spin
 * (10,000 rounds, about 0.4 ms here: longer than the gaps between oneDNN's regions in a
 * layer sequence, short against serial kernels). Run again with them set (once: they are
 * then set). */
static void set_omp_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0 || setenv("GOMP_SPINCOUNT", "10000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default policy */
}

int main(int argc, char **argv) {
    set_omp_wait_policy(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("mixrt %s\n", mixrt_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return mixrt_cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "build")) return mixrt_cmd_build(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return mixrt_cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return mixrt_cmd_bench(argc - 2, argv + 2);
    cli_die_usage("unknown command '%s'", cmd);
}
