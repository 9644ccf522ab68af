#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds a program against it with
# pkg-config, shared and static, then runs both. Usage: install_check.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cat > "$tmp/use.c" <<'C'
#include <mixrt/mixrt.h>
#include <mixrt/mixrt_onnx.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_model_t m;
    mixrt_status st = mixrt_model_load(ctx, "/nonexistent/model.onnx", &m);
    int ok = st == MIXRT_STATUS_IO_ERROR && strstr(mixrt_context_last_error(ctx), "/nonexistent/model.onnx");
    ok = ok && mixrt_bf16_to_float(mixrt_bf16_from_float(1.5f)) == 1.5f;
    printf("%s %s\n", mixrt_version(), ok ? "ok" : "FAILED");
    mixrt_context_destroy(ctx);
    return ok ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 "$tmp/use.c" $(pkg-config --cflags --libs mixrt) -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/use_shared"
cc -std=c11 -static "$tmp/use.c" $(pkg-config --static --cflags --libs mixrt) -o "$tmp/use_static"
"$tmp/use_shared"
"$tmp/use_static"
test -x "$tmp/prefix/bin/mixrt" && "$tmp/prefix/bin/mixrt" --version
