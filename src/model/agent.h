/* agent.h - agent configurations: validation of create and update bodies into the stored
 * configuration, and the questions sessions ask of it (which tools it offers).
 *
 * An agent's configuration is kept as one normalized JSON object holding exactly the
 * fields the SDK's BetaManagedAgentsAgent declares apart from id, type, version and the
 * timestamps: name, description, model, system, tools, skills, mcp_servers, multiagent,
 * execution_identity, metadata. environd runs no model, so what it cannot honour (skills,
 * MCP servers and toolsets, multiagent, execution identity) is refused naming the field.
 * Pure functions: no I/O. */
#ifndef ENVIROND_MODEL_AGENT_H
#define ENVIROND_MODEL_AGENT_H

#include <jansson.h>

#include "common/err.h"

#define AGENT_NAME_MAX 256
#define AGENT_DESCRIPTION_MAX 2048
#define AGENT_SYSTEM_MAX 100000
#define AGENT_MODEL_MAX 256
#define AGENT_TOOLS_MAX 128
#define AGENT_TOOL_NAME_MAX 128

/* Build the configuration of a new agent from a create body. On success *out is a new
 * reference owned by the caller. */
enum err agent_from_create(const json_t *body, json_t **out, struct errbuf *eb);

/* Merge an update body into `current` (not modified). *out is a new reference with the
 * merged configuration; *changed is set when it differs from current. The body's
 * optional "version" is returned in *expected_version (0 when absent): the caller refuses
 * the update when it is not the agent's current version. */
enum err agent_update(const json_t *current, const json_t *body, json_t **out, int *changed,
		      int64_t *expected_version, struct errbuf *eb);

/* The model id of a configuration ("" when missing). */
const char *agent_model_id(const json_t *config);

/* Is `name` a tool of the agent's agent_toolset_20260401 that is enabled? */
int agent_has_toolset_tool(const json_t *config, const char *name);
/* Is `name` one of the agent's custom tools? */
int agent_has_custom_tool(const json_t *config, const char *name);

#endif
