/* SPDX-License-Identifier: MIT */
/*
 * config_headers.c - the `headers` mappings of config.yaml's API-key entries
 * (codex-/claude-/gemini-api-key[i].headers, openai-compatibility[i].headers): free header
 * names as keys, which the libcyaml schema cannot describe, so this reads the same text
 * again with libyaml's document API. See cp_config_read_headers() in config.h.
 */
#include "config.h"

#include "cm/alloc.h"
#include "cm/cfg.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define MAX_HEADERS 64 /* per entry */

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
    (void)d;
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* the value node of @p key in mapping @p map, or NULL */
static yaml_node_t *member(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* headers mapping @p h -> *names / *values (owned) */
static int read_map(yaml_document_t *d, yaml_node_t *h, const char *list, size_t idx, char ***names,
                    char ***values, unsigned *n, char *err, size_t errlen)
{
    size_t count;
    if (!h || (h->type == YAML_SCALAR_NODE && !*scalar(d, h)))
        return CM_OK; /* absent, or `headers:` with nothing */
    if (h->type != YAML_MAPPING_NODE)
        return cm_cfg_fail(err, errlen, "%s[%zu].headers: must be a mapping of name: value", list,
                           idx);
    count = (size_t)(h->data.mapping.pairs.top - h->data.mapping.pairs.start);
    if (count > MAX_HEADERS)
        return cm_cfg_fail(err, errlen, "%s[%zu].headers: more than %d", list, idx, MAX_HEADERS);
    if (!count)
        return CM_OK;
    *names = cm_calloc(count, sizeof(char *));
    *values = cm_calloc(count, sizeof(char *));
    if (!*names || !*values)
        return CM_ERR_NOMEM;
    for (yaml_node_pair_t *p = h->data.mapping.pairs.start; p < h->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        const char *v = scalar(d, yaml_document_get_node(d, p->value));
        if (!k || !v || !*k || strpbrk(k, ": \r\n") || strpbrk(v, "\r\n"))
            return cm_cfg_fail(err, errlen,
                               "%s[%zu].headers: each entry must be a header name and a "
                               "one-line string value",
                               list, idx);
        (*names)[*n] = cm_strdup(k);
        (*values)[*n] = cm_strdup(v);
        (*n)++; /* counted at once: cp_config_free() frees what half-succeeded */
        if (!(*names)[*n - 1] || !(*values)[*n - 1])
            return CM_ERR_NOMEM;
    }
    return CM_OK;
}

int cp_config_read_headers(struct cp_config *cfg, const char *yaml, size_t len, char *err,
                           size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    int rc = CM_OK;
    static const char *const lists[] = {"codex-api-key", "claude-api-key", "gemini-api-key"};
    struct cp_config_key_entry *entries[3];
    unsigned counts[3];

    if (!cfg || !yaml)
        return CM_OK;
    entries[0] = cfg->codex_api_key, counts[0] = cfg->codex_api_key_count;
    entries[1] = cfg->claude_api_key, counts[1] = cfg->claude_api_key_count;
    entries[2] = cfg->gemini_api_key, counts[2] = cfg->gemini_api_key_count;
    if (!yaml_parser_initialize(&parser))
        return CM_ERR_NOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_parser_delete(&parser);
        return CM_OK; /* the schema loader already accepted this text: nothing to read */
    }
    root = yaml_document_get_root_node(&doc);
    for (int l = 0; l < 3 && !rc; l++) {
        yaml_node_t *seq = member(&doc, root, lists[l]);
        size_t i = 0;
        if (!seq || seq->type != YAML_SEQUENCE_NODE)
            continue;
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top && i < counts[l] && !rc; it++, i++) {
            struct cp_config_key_entry *e = &entries[l][i];
            rc = read_map(&doc, member(&doc, yaml_document_get_node(&doc, *it), "headers"),
                          lists[l], i, &e->hdr_names, &e->hdr_values, &e->n_hdrs, err, errlen);
        }
    }
    if (!rc) {
        yaml_node_t *seq = member(&doc, root, "openai-compatibility");
        size_t i = 0;
        if (seq && seq->type == YAML_SEQUENCE_NODE)
            for (yaml_node_item_t *it = seq->data.sequence.items.start;
                 it < seq->data.sequence.items.top && i < cfg->openai_compatibility_count && !rc;
                 it++, i++) {
                struct cp_config_compat *c = &cfg->openai_compatibility[i];
                rc = read_map(&doc, member(&doc, yaml_document_get_node(&doc, *it), "headers"),
                              "openai-compatibility", i, &c->hdr_names, &c->hdr_values, &c->n_hdrs,
                              err, errlen);
            }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}
