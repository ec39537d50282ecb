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
int cmd_agent(int argc, char **argv);
int cmd_session(int argc, char **argv);

struct cfg_values;
/* `session SUB`: check the parsed options (v) and the raw arguments (argv[0] = SUB) against
 * what SUB takes. Returns 0, or 2 after printing why. */
int session_check_args(const char *sub, const struct cfg_values *v, char **argv, int argc);

#endif
