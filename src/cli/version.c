// cli/version.c: `llem version` (also `llem --version`).
#include "cli/cli.h"
#include "llem.h"

#include <stdio.h>

int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("llem version %s\n", llem_version());
    return 0;
}
