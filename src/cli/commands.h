/* commands.h - one entry point per subcommand; main.c dispatches on argv[1].
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status. */
#ifndef ENVIROND_CLI_COMMANDS_H
#define ENVIROND_CLI_COMMANDS_H

int cmd_serve(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_env_key(int argc, char **argv);
int cmd_enqueue(int argc, char **argv);
int cmd_worker(int argc, char **argv);

#endif
