/* peprime: command-line entry point; dispatches to the stage drivers. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"

int pep_cmd_import_hf(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        printf("usage: peprime <command> [options]\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "import-hf")) return pep_cmd_import_hf(argc - 1, argv + 1);
    fprintf(stderr, "peprime: unknown command '%s'\n", argv[1]);
    return 2;
}
