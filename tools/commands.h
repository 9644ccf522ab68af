/* commands.h - the mixrt subcommands implemented outside mixrt.c. */
#ifndef MIXRT_TOOLS_COMMANDS_H
#define MIXRT_TOOLS_COMMANDS_H

/* argv holds the arguments after the subcommand name. Return the exit status. */
int mixrt_cmd_inspect(int argc, char **argv);

#endif
