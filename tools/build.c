/* build.c - `mixrt build MODEL.onnx -o MODEL.plan [build options]`: builds an engine,
 * saves it as a plan and prints a short summary. The plan is written only after a
 * successful build (the library replaces it atomically). */
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"

int mixrt_cmd_build(int argc, char **argv) {
    const char *model_path = NULL, *plan_path = NULL, *v;
    struct cli_build_args b;
    cli_build_args_init(&b);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_build_args_parse(&b, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "-o")) || (v = cli_opt_value(argc, argv, &i, "--output"))) {
            if (!*v) cli_die_usage("-o needs a file name, got ''");
            plan_path = v;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage("unknown option '%s' for build", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_die_usage("unexpected argument '%s'", a);
        }
    }
    if (!model_path) cli_die_usage("build needs a model file (MODEL.onnx)");
    if (!plan_path) cli_die_usage("build needs -o MODEL.plan");
    if (cli_is_plan(model_path)) cli_die_usage("build takes a .onnx model, not the plan '%s'", model_path);
    mixrt_context_t ctx = NULL;
    mixrt_engine_t e = NULL;
    int rc = 1;
    double ms = 0;
    if (cli_context_create(b.opts.verbose, &ctx)) goto done;
    if (cli_engine_open(ctx, model_path, &b, &e, &ms)) goto done;
    mixrt_status st = mixrt_engine_save(e, plan_path);
    if (st != MIXRT_STATUS_OK) {
        rc = cli_fail_ctx(ctx, st);
        goto done;
    }
    struct stat sb;
    long long size = stat(plan_path, &sb) == 0 ? (long long)sb.st_size : -1;
    char prec[64];
    cli_precisions_str(prec, sizeof(prec), b.opts.precisions);
    printf("built %s -> %s\n", model_path, plan_path);
    printf("  precisions: %s, %s typing, backend %s\n", prec, b.opts.strongly_typed ? "strong" : "weak",
           b.opts.backend ? b.opts.backend : "cpu");
    printf("  layers: %zu\n", mixrt_engine_layer_count(e));
    cli_print_layer_totals(e, "  ");
    printf("  build time: %.1f ms\n", ms);
    printf("  plan size: %lld bytes\n", size);
    rc = 0;
done:
    mixrt_engine_destroy(e);
    mixrt_context_destroy(ctx);
    cli_build_args_free(&b);
    return rc;
}
