/* commands.h - the mixrt subcommands implemented outside mixrt.c. */
#ifndef MIXRT_TOOLS_COMMANDS_H
#define MIXRT_TOOLS_COMMANDS_H

/* argv holds the arguments after the subcommand name. Each returns the exit status
 * (0 ok, 1 failure with one error line, 2 usage error). */
int mixrt_cmd_build(int argc, char **argv);
int mixrt_cmd_inspect(int argc, char **argv);
int mixrt_cmd_check(int argc, char **argv);
int mixrt_cmd_bench(int argc, char **argv);

#endif
