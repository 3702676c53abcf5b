#include "control/state.h"

#include "core/buf.h"
#include "core/file.h"
#include "core/jsonx.h"
#include "core/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE_FORMAT   1
#define STATE_FILE_MAX (256u << 20)

int mg_state_save(const char *path, mg_router_t *router, const char *source, uint64_t revision,
                  uint64_t digest, mg_err_t *err)
{
    mg_router_info_t info;
    mg_router_info(router, &info);
    mg_buf_t b = {0};
    int rc = mg_buf_printf(&b, "{\"format\":%d,\"source\":", STATE_FORMAT);
    rc = rc ? rc : mg_buf_json_string(&b, source, strlen(source));
    rc = rc ? rc
            : mg_buf_printf(&b,
                            ",\"revision\":%llu,\"digest\":\"%016llx\",\"saved_at\":%lld,"
                            "\"kill_switch\":%s,\n\"policies\":",
                            (unsigned long long)revision, (unsigned long long)digest,
                            (long long)time(NULL), info.kill_switch ? "true" : "false");
    rc = rc ? rc : mg_router_policies_json(router, &b);
    rc = rc ? rc : mg_buf_puts(&b, ",\n\"routes\":");
    rc = rc ? rc : mg_router_table_json(router, &b);
    rc = rc ? rc : mg_buf_puts(&b, "}\n");
    if (rc != 0) {
        mg_buf_free(&b);
        return mg_err_set(err, MG_ENOMEM, "out of memory writing %s", path);
    }
    rc = mg_file_write_atomic(path, b.data, b.len, err);
    mg_buf_free(&b);
    return rc;
}

void mg_state_persist(void *path, mg_router_t *router, const char *source, uint64_t revision,
                      uint64_t digest)
{
    mg_err_t err;
    if (mg_state_save(path, router, source, revision, digest, &err) != 0)
        mg_log(MG_LOG_ERROR, "control", "state not saved path=%s (%s)", (const char *)path,
               err.msg);
}

void mg_state_free(mg_state_t *s)
{
    for (size_t i = 0; i < s->ntexts; i++)
        free(s->texts[i]);
    free(s->texts);
    free(s->policies);
    memset(s, 0, sizeof(*s));
}

/* Keeps `text` (malloc'd, may be NULL: out of memory) in the state; returns it. */
static char *keep(mg_state_t *s, char *text)
{
    if (text != NULL)
        s->texts[s->ntexts++] = text;
    return text;
}

static int bad(mg_err_t *err, const char *path, const char *what)
{
    return mg_err_set(err, MG_ECONFIG, "%s: %s", path, what);
}

int mg_state_load(const char *path, mg_state_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len = 0;
    int rc = mg_file_read(path, STATE_FILE_MAX, &text, &len, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (root == NULL)
        return mg_err_set(err, MG_ECONFIG, "%s: line %d column %d: %s", path, jerr.line,
                          jerr.column, jerr.text);
    static const char *const known[] = {"format",   "source",   "revision", "digest",
                                        "saved_at", "policies", "routes",   "kill_switch"};
    json_t *policies = json_object_get(root, "policies");
    json_t *routes = json_object_get(root, "routes");
    json_t *kill = json_object_get(root, "kill_switch");
    const char *unknown = mg_jsonx_unknown_field(root, known, sizeof(known) / sizeof(known[0]));
    const char *digest = json_string_value(json_object_get(root, "digest"));
    if (!json_is_object(root))
        rc = bad(err, path, "not a JSON object");
    else if (unknown != NULL)
        rc = mg_err_set(err, MG_ECONFIG, "%s: unknown field '%s'", path, unknown);
    else if (json_integer_value(json_object_get(root, "format")) != STATE_FORMAT)
        rc = bad(err, path, "'format' must be 1");
    else if (policies != NULL && !json_is_object(policies))
        rc = bad(err, path, "'policies' must be an object of model name to policy");
    else if (routes != NULL && !json_is_object(routes))
        rc = bad(err, path, "'routes' must be a route table object");
    else if (kill != NULL && !json_is_boolean(kill))
        rc = bad(err, path, "'kill_switch' must be true or false");
    if (rc != 0) {
        json_decref(root);
        return rc;
    }

    size_t n = json_object_size(policies);
    out->texts = calloc(2 * n + 1, sizeof(char *));
    out->policies = calloc(n + 1, sizeof(*out->policies));
    if (out->texts == NULL || out->policies == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "out of memory reading %s", path);
    const char *model;
    json_t *p;
    size_t i = 0;
    json_object_foreach(policies, model, p)
    {
        if (rc != 0)
            break;
        char *name = keep(out, strdup(model));
        char *json = keep(out, json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY));
        if (name == NULL || json == NULL) {
            rc = mg_err_set(err, MG_ENOMEM, "out of memory reading %s", path);
            break;
        }
        out->policies[i++] = (mg_control_policy_text_t){name, json, strlen(json)};
    }
    char *table = NULL;
    if (rc == 0 && routes != NULL && (table = keep(out, json_dumps(routes, JSON_COMPACT))) == NULL)
        rc = mg_err_set(err, MG_ENOMEM, "out of memory reading %s", path);
    if (rc != 0) {
        json_decref(root);
        mg_state_free(out);
        return rc;
    }
    const char *source = json_string_value(json_object_get(root, "source"));
    mg_str_format(out->saved_source, sizeof(out->saved_source), "%s", source ? source : "admin");
    out->saved_at = (int64_t)json_integer_value(json_object_get(root, "saved_at"));
    out->fleet = (mg_control_fleet_t){
        .source = "state file",
        .revision = (uint64_t)json_integer_value(json_object_get(root, "revision")),
        .digest = digest != NULL ? strtoull(digest, NULL, 16) : 0,
        .policies = out->policies,
        .npolicies = i,
        .routes = table,
        .routes_len = table != NULL ? strlen(table) : 0,
        .kill_switch = json_is_true(kill),
        .rejected = MG_CONTROL_FLEET_NONE,
    };
    json_decref(root);
    return 0;
}

int mg_state_restore(mg_control_t *c, const char *path, mg_state_restored_t *out, mg_err_t *err)
{
    mg_state_t st;
    int rc = mg_state_load(path, &st, err);
    if (rc != 0)
        return rc;
    mg_control_op_t op = {.kind = MG_CONTROL_APPLY_FLEET, .fleet = &st.fleet};
    rc = mg_control_run(c, &op);
    if (rc != 0) {
        mg_err_set(err, rc, "%s: %s", path, op.err.msg);
    } else {
        mg_str_format(out->source, sizeof(out->source), "%s", st.saved_source);
        out->revision = st.fleet.revision;
        out->digest = st.fleet.digest;
        out->saved_at = st.saved_at;
    }
    mg_state_free(&st);
    return rc;
}
