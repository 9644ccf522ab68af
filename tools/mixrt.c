/* mixrt.c - the mixrt command line: subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "mixrt/mixrt.h"

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("mixrt %s\n", mixrt_version());
        return 0;
    }
    fprintf(stderr, "usage: mixrt run|--version ...\n");
    return 2;
}
