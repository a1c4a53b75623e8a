/* SPDX-License-Identifier: MIT */
/*
 * chat_gemini.c - OpenAI Chat Completions <-> Gemini GenerateContent translation (pure).
 *
 * Request: a chat.completions tree becomes a GenerateContentRequest (spec cliproxyapi.md
 * 5.1 for the thinking budget, 5.5 for the mapping). Gemini wants turns of role user /
 * model made of parts, so each message becomes a parts array first and goes through one
 * place that merges it into the previous turn of its role. Tool results need the name of
 * the call they answer: the ids of earlier assistant tool calls are remembered on the way.
 * Response: every Gemini event is a complete GenerateContentResponse (raw, or wrapped in
 * {"response":...} by Gemini CLI); the stream turns each into chunks and only learns that
 * the answer is over when the body ends, so finish() writes the finish chunk. The
 * aggregator walks the same responses into one chat.completion, with the same call ids
 * and finish reasons.
 */
#include "translate/chat_gemini.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <stdio.h>
#include <string.h>

/* ---- small helpers ---- */

/* True when @p s ends with @p suffix, ASCII case-insensitively. */
static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);

    if (n < m)
        return false;
    for (size_t i = 0; i < m; i++) {
        char a = s[n - m + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* A member that is present and not null. */
static const cJSON *given(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* ---- 5.1: model suffix and thinking budget ---- */

/*
 * The thinking budget a level word or decimal budget @p v (@p n bytes) names: true and
 * *(int64_t *)@p budget_out (0 = off, -1 = dynamic), or false. Also the
 * cp_tr_split_model() suffix check.
 */
static bool budget_of(const char *v, size_t n, void *budget_out)
{
    static const struct {
        const char *word;
        int64_t budget;
    } levels[] = {
        {"none", 0},      {"minimal", 512}, {"low", 1024}, {"medium", 8192}, {"high", 24576},
        {"xhigh", 32768}, {"max", 128000},  {"auto", -1},  {"-1", -1},
    };
    int64_t *budget = budget_out, b = 0;
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (cp_tr_slice_eq(v, n, levels[i].word)) {
            *budget = levels[i].budget;
            return true;
        }
    }
    if (n == 0 || n > 9) /* 9 digits cannot overflow */
        return false;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        b = b * 10 + (v[i] - '0');
    }
    *budget = b;
    return true;
}

/* ---- request: parts ---- */

/* Appends {"text": @p text} to @p parts unless the text is empty. */
static int add_text(cJSON *parts, const char *text)
{
    cJSON *o = NULL;
    int rc;

    if (!text[0]) /* Gemini refuses empty text parts */
        return CM_OK;
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "text", text))) {
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(parts, NULL, &o);
}

/* Appends {@p key: {"mimeType": @p mime (@p mime_len bytes), @p vkey: @p val}}. */
static int add_blob(cJSON *parts, const char *key, const char *mime, size_t mime_len,
                    const char *vkey, const char *val)
{
    cJSON *o = NULL, *in = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_new_object(&in)) ||
        (rc = cm_json_set_stringn(in, "mimeType", mime, mime_len)) ||
        (rc = cm_json_set_string(in, vkey, val)))
        goto out;
    rc = cm_json_adopt(o, key, &in);
    if (rc)
        goto out;
    rc = cm_json_adopt(parts, NULL, &o);
out:
    cJSON_Delete(in);
    cJSON_Delete(o);
    return rc;
}

/* The image MIME type an URL's extension names (query and fragment ignored). */
static const char *guess_image_mime(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } map[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},   {".webp", "image/webp"}, {".heic", "image/heic"},
        {".heif", "image/heif"},
    };
    size_t n = strcspn(url, "?#");

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (ends_with_ci(url, n, map[i].ext))
            return map[i].mime;
    return "image/png";
}

static int conv_image(const struct cp_tr_chat_part *p, cJSON *parts, struct cm_json_err *je)
{
    const char *url = p->url, *media = NULL, *data = NULL;
    size_t media_len = 0;

    if (cp_tr_data_url(url, &media, &media_len, &data)) {
        if (media_len < 7 || memcmp(media, "image/", 6) != 0) {
            cm_json_err_set(je, CM_ERR_INVAL, "image_url.url", "must be an image data URL");
            return CM_ERR_INVAL;
        }
        return add_blob(parts, "inlineData", media, media_len, "data", data);
    }
    if (cp_tr_has_prefix(url, "https://") || cp_tr_has_prefix(url, "http://")) {
        const char *mime = guess_image_mime(url);
        return add_blob(parts, "fileData", mime, strlen(mime), "fileUri", url);
    }
    cm_json_err_set(je, CM_ERR_INVAL, "image_url.url",
                    "must be a base64 data URL or an http(s) URL");
    return CM_ERR_INVAL;
}

static int conv_file(const struct cp_tr_chat_part *p, cJSON *parts, struct cm_json_err *je)
{
    static const char pdf[] = "application/pdf";
    const char *data = p->data, *media = NULL, *b64 = NULL;
    size_t media_len = 0, flen = p->filename ? strlen(p->filename) : 0;

    if (!data) {
        cm_json_err_set(je, CM_ERR_INVAL, "file.file_id",
                        "is not supported on this model (send file_data)");
        return CM_ERR_INVAL;
    }
    if (cp_tr_data_url(data, &media, &media_len, &b64)) {
        if (media_len != sizeof(pdf) - 1 || memcmp(media, pdf, media_len) != 0)
            b64 = NULL;
    } else if (p->filename && ends_with_ci(p->filename, flen, ".pdf") &&
               !cp_tr_has_prefix(data, "data:")) {
        b64 = data; /* raw base64 of a file named *.pdf */
    }
    if (!b64) {
        cm_json_err_set(je, CM_ERR_INVAL, "file.file_data",
                        "must hold a PDF (data:application/pdf;base64,...)");
        return CM_ERR_INVAL;
    }
    return add_blob(parts, "inlineData", pdf, sizeof(pdf) - 1, "data", b64);
}

/* {"type":"input_audio","input_audio":{"data","format"}} -> inlineData audio/<format>. */
static int conv_audio(const cJSON *p, cJSON *parts, struct cm_json_err *je)
{
    const char *data = NULL, *format = NULL;
    char mime[64];
    cJSON *ia = NULL;
    int rc;

    if ((rc = cm_json_get_object(p, "input_audio", &ia, je)))
        return rc;
    if ((rc = cm_json_get_string(ia, "data", &data, je)) ||
        (rc = cm_json_get_string(ia, "format", &format, je))) {
        cm_json_err_scope(je, "input_audio");
        return rc;
    }
    if (!format[0] || strlen(format) > 32 ||
        strspn(format, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(format)) {
        cm_json_err_set(je, CM_ERR_INVAL, "input_audio.format", "must be an audio format name");
        return CM_ERR_INVAL;
    }
    snprintf(mime, sizeof(mime), "audio/%s", format);
    return add_blob(parts, "inlineData", mime, strlen(mime), "data", data);
}

/* One user/assistant content part (already read) -> parts. */
static int conv_part(const struct cp_tr_chat_part *p, cJSON *parts, struct cm_json_err *je)
{
    if (cp_tr_str_eq(p->type, "text") || cp_tr_str_eq(p->type, "refusal"))
        return add_text(parts, p->text);
    if (cp_tr_str_eq(p->type, "image_url"))
        return conv_image(p, parts, je);
    return conv_file(p, parts, je);
}

/*
 * The content of message @p m (role @p role) as parts appended to @p parts: a string ->
 * one text part; an array -> its parts (input_audio accepted from users besides what
 * cp_tr_chat_part_read() reads); absent/null -> none, an error unless @p optional.
 */
static int conv_content(const cJSON *m, const char *role, bool optional, cJSON *parts,
                        struct cm_json_err *je)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content"), *p;
    struct cp_tr_chat_part part;
    size_t i = 0;
    int rc;

    if (!content || cJSON_IsNull(content)) {
        if (optional)
            return CM_OK;
        cm_json_err_set(je, CM_ERR_INVAL, "content", "is required");
        return CM_ERR_INVAL;
    }
    if (cJSON_IsString(content))
        return add_text(parts, content->valuestring);
    if (!cJSON_IsArray(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(content, CP_TR_CHAT_GEMINI_MAX_PARTS, "content", "parts", je)))
        return rc;
    cJSON_ArrayForEach(p, content)
    {
        if (cp_tr_str_eq(role, "user") &&
            cp_tr_str_eq(cp_tr_str_member(p, "type", ""), "input_audio"))
            rc = conv_audio(p, parts, je);
        else if (!(rc = cp_tr_chat_part_read(p, role, &part, je)))
            rc = conv_part(&part, parts, je);
        if (rc) {
            cm_json_err_scope(je, "content[%zu]", i);
            return rc;
        }
        i++;
    }
    return CM_OK;
}

/* ---- request: turns ---- */

/* The conversation being built. */
struct turns {
    cJSON *contents;  /* owned until adopted into the body */
    cJSON *system;    /* systemInstruction parts (owned until adopted) */
    cJSON *call_ids;  /* tool_call id -> function name, from assistant tool calls (owned) */
    cJSON *last;      /* parts of the last turn (borrowed from contents) */
    bool last_user;   /* the last turn is a user turn */
    cJSON *cur_parts; /* conv_tool_call(): where the functionCall parts go */
};

/*
 * Moves every part of @p parts (emptied, still the caller's) into a turn of @p user's
 * role: the last turn when it has that role, else a new one.
 */
static int turn_append(struct turns *t, bool user, cJSON *parts)
{
    cJSON *o = NULL, *arr = NULL, *p;
    int rc;

    if (!cJSON_GetArraySize(parts))
        return CM_OK;
    if (!t->last || t->last_user != user) {
        cJSON *a;
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_set_string(o, "role", user ? "user" : "model")) ||
            (rc = cm_json_new_array(&arr)))
            goto out;
        a = arr;
        rc = cm_json_adopt(o, "parts", &arr);
        if (rc || (rc = cm_json_adopt(t->contents, NULL, &o)))
            goto out;
        t->last = a;
        t->last_user = user;
    }
    while ((p = cJSON_DetachItemFromArray(parts, 0)) != NULL)
        cJSON_AddItemToArray(t->last, p); /* links, cannot fail */
    rc = CM_OK;
out:
    cJSON_Delete(arr);
    cJSON_Delete(o);
    return rc;
}

/* system / developer content -> systemInstruction text parts. */
static int conv_system(const cJSON *m, struct turns *t, struct cm_json_err *je)
{
    return cp_tr_chat_system_texts(m, CP_TR_CHAT_GEMINI_MAX_PARTS, add_text, t->system, je);
}

/* cp_tr_chat_tool_calls() callback: one assistant tool call -> a functionCall part. */
static int conv_tool_call(void *ud, const char *id, const char *name, const char *args)
{
    struct turns *t = ud;
    cJSON *o = NULL, *fc = NULL, *a = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_new_object(&fc)) ||
        (rc = cm_json_set_string(fc, "name", name)) || (rc = cp_tr_args_object(args, &a)) ||
        (rc = cm_json_adopt(fc, "args", &a)) || (rc = cm_json_adopt(o, "functionCall", &fc)))
        goto out;
    rc = cm_json_adopt(t->cur_parts, NULL, &o);
    if (rc)
        goto out;
    /* remember the name for the tool message that answers this id (the latest one wins) */
    cJSON_DeleteItemFromObjectCaseSensitive(t->call_ids, id);
    rc = cm_json_set_string(t->call_ids, id, name);
out:
    cJSON_Delete(a);
    cJSON_Delete(fc);
    cJSON_Delete(o);
    return rc;
}

/* role tool -> {"functionResponse":{"name","response"}} in @p parts. */
static int conv_tool_result(const cJSON *m, struct turns *t, cJSON *parts, struct cm_json_err *je)
{
    const char *call_id = NULL, *name;
    cJSON *o = NULL, *fr = NULL, *resp = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, (size_t)64 << 20);
    if ((rc = cp_tr_chat_tool_message(m, &call_id, &b, je)))
        goto out;
    name = cp_tr_str_member(t->call_ids, call_id, NULL);
    if (!name) {
        cm_json_err_set(je, CM_ERR_INVAL, "tool_call_id",
                        "does not match a tool call of an earlier assistant message");
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cm_json_parse(b.data ? b.data : "", b.len, NULL, &resp, NULL);
    if (rc == CM_ERR_NOMEM)
        goto out;
    if (rc || !cJSON_IsObject(resp)) {
        cJSON_Delete(resp);
        resp = NULL;
        if ((rc = cm_json_new_object(&resp)) ||
            (rc = cm_json_set_stringn(resp, "content", b.data ? b.data : "", b.len)))
            goto out;
    }
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_new_object(&fr)) ||
        (rc = cm_json_set_string(fr, "name", name)) ||
        (rc = cm_json_adopt(fr, "response", &resp)) ||
        (rc = cm_json_adopt(o, "functionResponse", &fr)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &o);
out:
    cJSON_Delete(resp);
    cJSON_Delete(fr);
    cJSON_Delete(o);
    cm_buf_cleanup(&b);
    return rc;
}

static int conv_message(const cJSON *m, struct turns *t, struct cm_json_err *je)
{
    const char *role = NULL;
    cJSON *parts = NULL;
    bool user = true;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(role, "system") || cp_tr_str_eq(role, "developer"))
        return conv_system(m, t, je);
    if ((rc = cm_json_new_array(&parts)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(role, "tool")) {
        rc = conv_tool_result(m, t, parts, je);
    } else if (cp_tr_str_eq(role, "user")) {
        if (!(rc = conv_content(m, "user", false, parts, je)) && !cJSON_GetArraySize(parts)) {
            cm_json_err_set(je, CM_ERR_INVAL, "content", "must not be empty");
            rc = CM_ERR_INVAL;
        }
    } else if (cp_tr_str_eq(role, "assistant")) {
        const cJSON *calls = given(m, "tool_calls");
        user = false;
        if (cJSON_GetObjectItemCaseSensitive(m, "function_call")) {
            cm_json_err_set(je, CM_ERR_INVAL, "function_call",
                            "is not supported (legacy functions API; use tool_calls)");
            rc = CM_ERR_INVAL;
        } else if (!(rc = conv_content(m, "assistant", true, parts, je)) && calls) {
            t->cur_parts = parts;
            rc = cp_tr_chat_tool_calls(calls, CP_TR_CHAT_GEMINI_MAX_TOOLS, conv_tool_call, t, je);
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "role", "unsupported role '%.16s'", role);
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = turn_append(t, user, parts);
    cJSON_Delete(parts);
    return rc;
}

/* ---- request: schemas ---- */

static int clean_schema(cJSON *s, int depth, struct cm_json_err *je);

/* Cleans each schema of the array @p arr (a non-array is left alone). */
static int clean_schema_list(cJSON *arr, int depth, struct cm_json_err *je)
{
    cJSON *s;
    int rc;

    if (!cJSON_IsArray(arr))
        return CM_OK;
    cJSON_ArrayForEach(s, arr)
    {
        if ((rc = clean_schema(s, depth, je)))
            return rc;
    }
    return CM_OK;
}

/*
 * Removes from the schema @p s (a copy we own), and from every schema nested in it, the
 * keywords Gemini's Schema rejects; a "$ref" is refused. Property names are never touched.
 */
static int clean_schema(cJSON *s, int depth, struct cm_json_err *je)
{
    static const char *const drop[] = {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "additionalProperties",
        "unevaluatedProperties",
        "patternProperties",
        "strict",
    };
    static const char *const lists[] = {"anyOf", "oneOf", "allOf", "prefixItems"};
    cJSON *p, *items;
    size_t i;
    int rc;

    if (!cJSON_IsObject(s))
        return CM_OK;
    if (depth >= CP_TR_CHAT_GEMINI_SCHEMA_DEPTH) {
        cm_json_err_set(je, CM_ERR_LIMIT, "", "is nested more than %d levels deep",
                        CP_TR_CHAT_GEMINI_SCHEMA_DEPTH);
        return CM_ERR_LIMIT;
    }
    if (cJSON_GetObjectItemCaseSensitive(s, "$ref")) {
        cm_json_err_set(je, CM_ERR_INVAL, "",
                        "uses $ref, which Gemini cannot resolve (inline "
                        "the definitions)");
        return CM_ERR_INVAL;
    }
    for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(s, drop[i]);
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "properties"))
    {
        if ((rc = clean_schema(p, depth + 1, je)))
            return rc;
    }
    items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if ((rc = cJSON_IsArray(items) ? clean_schema_list(items, depth + 1, je)
                                   : clean_schema(items, depth + 1, je)) ||
        (rc = clean_schema(cJSON_GetObjectItemCaseSensitive(s, "not"), depth + 1, je)))
        return rc;
    for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if ((rc = clean_schema_list(cJSON_GetObjectItemCaseSensitive(s, lists[i]), depth + 1, je)))
            return rc;
    return CM_OK;
}

/* A cleaned copy of the schema @p in into *@p out; errors name @p field. */
static int schema_copy(const cJSON *in, const char *field, cJSON **out, struct cm_json_err *je)
{
    cJSON *c = cJSON_Duplicate(in, 1);
    int rc;

    if (!c)
        return CM_ERR_NOMEM;
    if ((rc = clean_schema(c, 0, je))) {
        cJSON_Delete(c);
        if (je && !je->field[0])
            cm_json_err_scope(je, "%s", field);
        return rc;
    }
    *out = c;
    return CM_OK;
}

/* ---- request: tools, tool_choice ---- */

/* One tools[] entry: a function declaration into @p decls, or a built-in tool into @p tools. */
static int conv_tool(const cJSON *t, cJSON *decls, cJSON *tools, struct cm_json_err *je)
{
    static const char *const builtin[] = {"googleSearch", "codeExecution", "urlContext"};
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *params = NULL, *clean = NULL;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, builtin[i]);
        if (b && !cJSON_GetObjectItemCaseSensitive(t, "type")) {
            if (!cJSON_IsObject(b)) {
                cm_json_err_set(je, CM_ERR_INVAL, builtin[i], "must be an object");
                return CM_ERR_INVAL;
            }
            return cm_json_set_item(tools, NULL, cJSON_Duplicate(t, 1));
        }
    }
    if ((rc = cm_json_get_string(t, "type", &type, je)))
        return rc;
    if (!cp_tr_str_eq(type, "function")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "unsupported tool type '%.32s' (only function tools)", type);
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_function_tool(t, &name, &desc, &params, NULL, je)))
        return rc;
    if (params && (rc = schema_copy(params, "function.parameters", &clean, je)))
        return rc;
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "name", name)) ||
        (desc && (rc = cm_json_set_string(o, "description", desc))) ||
        (clean && (rc = cm_json_adopt(o, "parameters", &clean))))
        goto out;
    rc = cm_json_adopt(decls, NULL, &o);
out:
    cJSON_Delete(clean);
    cJSON_Delete(o);
    return rc;
}

/* tools -> body.tools; *@p has_decls tells whether some function was declared. */
static int conv_tools(const cJSON *tools, cJSON *body, bool *has_decls, struct cm_json_err *je)
{
    cJSON *decls = NULL, *arr = NULL, *o = NULL;
    const cJSON *t;
    size_t i = 0;
    int rc;

    *has_decls = false;
    if (!cJSON_IsArray(tools)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tools", "must be an array");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(tools, CP_TR_CHAT_GEMINI_MAX_TOOLS, "tools", "entries", je)) ||
        (rc = cm_json_new_array(&decls)) || (rc = cm_json_new_array(&arr)))
        goto out;
    cJSON_ArrayForEach(t, tools)
    {
        if ((rc = conv_tool(t, decls, arr, je))) {
            cm_json_err_scope(je, "tools[%zu]", i);
            goto out;
        }
        i++;
    }
    if (cJSON_GetArraySize(decls) > 0) {
        *has_decls = true;
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_adopt(o, "functionDeclarations", &decls)))
            goto out;
        (void)cJSON_InsertItemInArray(arr, 0, o); /* links, cannot fail */
        o = NULL;
    }
    if (cJSON_GetArraySize(arr) > 0)
        rc = cm_json_adopt(body, "tools", &arr);
out:
    cJSON_Delete(o);
    cJSON_Delete(decls);
    cJSON_Delete(arr);
    return rc;
}

/* tool_choice @p tc (given) -> body.toolConfig.functionCallingConfig. */
static int conv_tool_choice(const cJSON *tc, cJSON *body, struct cm_json_err *je)
{
    cJSON *cfg = NULL, *fcc = NULL, *names = NULL, *fn = NULL;
    const char *type = NULL, *name = NULL;
    int rc;

    if ((rc = cm_json_new_object(&fcc)) != CM_OK)
        return rc;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        const char *mode = cp_tr_str_eq(s, "auto")       ? "AUTO"
                           : cp_tr_str_eq(s, "none")     ? "NONE"
                           : cp_tr_str_eq(s, "required") ? "ANY"
                                                         : NULL;
        if (!mode) {
            cm_json_err_set(je, CM_ERR_INVAL, "tool_choice",
                            "must be 'auto', 'none', 'required' or a function choice");
            rc = CM_ERR_INVAL;
            goto out;
        }
        if ((rc = cm_json_set_string(fcc, "mode", mode)))
            goto out;
    } else {
        if ((rc = cm_json_get_string(tc, "type", &type, je)) != CM_OK)
            goto bad;
        if (!cp_tr_str_eq(type, "function")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool_choice type '%.32s'", type);
            rc = CM_ERR_INVAL;
            goto bad;
        }
        if ((rc = cm_json_get_object(tc, "function", &fn, je)) != CM_OK)
            goto bad;
        if ((rc = cm_json_get_string(fn, "name", &name, je)) != CM_OK) {
            cm_json_err_scope(je, "function");
            goto bad;
        }
        if ((rc = cm_json_set_string(fcc, "mode", "ANY")) || (rc = cm_json_new_array(&names)) ||
            (rc = cm_json_set_item(names, NULL, cJSON_CreateString(name))) ||
            (rc = cm_json_adopt(fcc, "allowedFunctionNames", &names)))
            goto out;
    }
    if ((rc = cm_json_new_object(&cfg)) || (rc = cm_json_adopt(cfg, "functionCallingConfig", &fcc)))
        goto out;
    rc = cm_json_adopt(body, "toolConfig", &cfg);
    goto out;
bad:
    cm_json_err_scope(je, "tool_choice");
out:
    cJSON_Delete(names);
    cJSON_Delete(cfg);
    cJSON_Delete(fcc);
    return rc;
}

/* ---- request: generationConfig ---- */

static int conv_stop(const cJSON *stop, cJSON *gc, struct cm_json_err *je)
{
    return cp_tr_chat_stop_list(stop, CP_TR_CHAT_GEMINI_MAX_TOOLS, gc, "stopSequences", je);
}

/* Copies the number @p name of @p req (range-checked) into @p gc as @p key. */
static int copy_double(const cJSON *req, const char *name, double min, double max, cJSON *gc,
                       const char *key, struct cm_json_err *je)
{
    double v = 0;
    int rc;

    if (!given(req, name))
        return CM_OK;
    if ((rc = cm_json_get_double(req, name, min, max, &v, je)))
        return rc;
    return cm_json_set_double(gc, key, v);
}

static int copy_int(const cJSON *req, const char *name, int64_t min, int64_t max, cJSON *gc,
                    const char *key, struct cm_json_err *je)
{
    int64_t v = 0;
    int rc;

    if (!given(req, name))
        return CM_OK;
    if ((rc = cm_json_get_int64(req, name, min, max, &v, je)))
        return rc;
    return cm_json_set_int64(gc, key, v);
}

/* response_format -> responseMimeType / responseSchema. */
static int conv_response_format(const cJSON *req, cJSON *gc, struct cm_json_err *je)
{
    const cJSON *rf = given(req, "response_format");
    cJSON *js = NULL, *schema = NULL, *clean = NULL;
    const char *type = NULL;
    int rc;

    if (!rf)
        return CM_OK;
    if ((rc = cm_json_get_string(rf, "type", &type, je)))
        goto bad;
    if (cp_tr_str_eq(type, "text"))
        return CM_OK;
    if (cp_tr_str_eq(type, "json_schema")) {
        if ((rc = cm_json_get_object(rf, "json_schema", &js, je)) ||
            (rc = cm_json_opt_object(js, "schema", &schema, je))) {
            if (js)
                cm_json_err_scope(je, "json_schema");
            goto bad;
        }
        if (schema && (rc = schema_copy(schema, "json_schema.schema", &clean, je)))
            goto bad;
    } else if (!cp_tr_str_eq(type, "json_object")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported response_format type '%.32s'", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cm_json_set_string(gc, "responseMimeType", "application/json")))
        goto out;
    if (clean)
        rc = cm_json_adopt(gc, "responseSchema", &clean);
    goto out;
bad:
    cm_json_err_scope(je, "response_format");
out:
    cJSON_Delete(clean);
    return rc;
}

/* modalities -> responseModalities (only when an image is asked). */
static int conv_modalities(const cJSON *req, cJSON *gc, struct cm_json_err *je)
{
    const cJSON *mods = given(req, "modalities"), *m;
    cJSON *arr = NULL;
    bool image = false;
    int rc;

    if (!mods)
        return CM_OK;
    if (!cJSON_IsArray(mods)) {
        cm_json_err_set(je, CM_ERR_INVAL, "modalities", "must be an array of strings");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_new_array(&arr)))
        return rc;
    cJSON_ArrayForEach(m, mods)
    {
        const char *s = cJSON_IsString(m) ? m->valuestring : "";
        const char *up = cp_tr_str_eq(s, "text")    ? "TEXT"
                         : cp_tr_str_eq(s, "image") ? "IMAGE"
                                                    : NULL;
        if (!up) {
            cm_json_err_set(je, CM_ERR_INVAL, "modalities",
                            cp_tr_str_eq(s, "audio") ? "audio output is not supported"
                                                     : "only 'text' and 'image' are supported");
            rc = CM_ERR_INVAL;
            goto out;
        }
        image = image || cp_tr_str_eq(s, "image");
        if ((rc = cm_json_set_item(arr, NULL, cJSON_CreateString(up))))
            goto out;
    }
    if (image)
        rc = cm_json_adopt(gc, "responseModalities", &arr);
out:
    cJSON_Delete(arr);
    return rc;
}

/* thinkingConfig for budget @p budget. */
static int conv_thinking(int64_t budget, cJSON *gc)
{
    cJSON *tc = NULL;
    int rc;

    if ((rc = cm_json_new_object(&tc)) || (rc = cm_json_set_int64(tc, "thinkingBudget", budget)) ||
        (budget != 0 && (rc = cm_json_set_bool(tc, "includeThoughts", true))))
        goto out;
    rc = cm_json_adopt(gc, "thinkingConfig", &tc);
out:
    cJSON_Delete(tc);
    return rc;
}

/* What no Gemini answer can express. */
static int check_unexpressible(const cJSON *req, struct cm_json_err *je)
{
    int64_t n = 1;
    bool b = false;
    int rc;

    if ((rc = cm_json_opt_int64(req, "n", 1, 128, 1, &n, je)))
        return rc;
    if (n != 1) {
        cm_json_err_set(je, CM_ERR_INVAL, "n", "must be 1 (Gemini returns one candidate here)");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_opt_bool(req, "logprobs", false, &b, je)))
        return rc;
    if (b) {
        cm_json_err_set(je, CM_ERR_INVAL, "logprobs", "is not supported by this model");
        return CM_ERR_INVAL;
    }
    if (given(req, "audio")) {
        cm_json_err_set(je, CM_ERR_INVAL, "audio", "audio output is not supported");
        return CM_ERR_INVAL;
    }
    if (cJSON_GetObjectItemCaseSensitive(req, "functions") ||
        cJSON_GetObjectItemCaseSensitive(req, "function_call")) {
        cm_json_err_set(je, CM_ERR_INVAL,
                        cJSON_GetObjectItemCaseSensitive(req, "functions") ? "functions"
                                                                           : "function_call",
                        "is not supported (legacy functions API; use tools)");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

static int conv_generation(const cJSON *req, bool think, int64_t budget, cJSON *body,
                           struct cm_json_err *je)
{
    const char *mt = given(req, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    const cJSON *stop = given(req, "stop");
    cJSON *gc = NULL;
    int rc;

    if ((rc = cm_json_new_object(&gc)) ||
        (rc = copy_double(req, "temperature", 0, 2, gc, "temperature", je)) ||
        (rc = copy_double(req, "top_p", 0, 1, gc, "topP", je)) ||
        (rc = copy_int(req, "top_k", 1, CM_JSON_INT_MAX, gc, "topK", je)) ||
        (rc = copy_int(req, "n", 1, 1, gc, "candidateCount", je)) ||
        (rc = copy_int(req, mt, 1, CM_JSON_INT_MAX, gc, "maxOutputTokens", je)) ||
        (stop && (rc = conv_stop(stop, gc, je))) ||
        (rc = copy_int(req, "seed", CM_JSON_INT_MIN, CM_JSON_INT_MAX, gc, "seed", je)) ||
        (rc = copy_double(req, "presence_penalty", -2, 2, gc, "presencePenalty", je)) ||
        (rc = copy_double(req, "frequency_penalty", -2, 2, gc, "frequencyPenalty", je)) ||
        (rc = conv_response_format(req, gc, je)) || (rc = conv_modalities(req, gc, je)) ||
        (think && (rc = conv_thinking(budget, gc))))
        goto out;
    if (cJSON_GetArraySize(gc) > 0)
        rc = cm_json_adopt(body, "generationConfig", &gc);
out:
    cJSON_Delete(gc);
    return rc;
}

/* ---- request: the body ---- */

/* cp_tr_request() build step; the base model travels in body."model" until the caller. */
static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    struct turns t = {NULL, NULL, NULL, NULL, false, NULL};
    cJSON *body = NULL, *messages = NULL;
    const cJSON *m, *tools, *tc;
    const char *model = NULL, *effort = NULL;
    char *base = NULL;
    bool think = false, has_decls = false;
    int64_t budget = 0;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_get_array(req, "messages", &messages, je)) ||
        (rc = cm_json_opt_string(req, "reasoning_effort", NULL, &effort, je)) ||
        (rc = check_unexpressible(req, je)) ||
        (rc = cp_tr_check_messages(messages, CP_TR_CHAT_GEMINI_MAX_MESSAGES, je)) ||
        (rc = cp_tr_split_model(model, budget_of, &budget, &base, &think, je)))
        goto out;
    if (!think && effort) {
        if (!budget_of(effort, strlen(effort), &budget) || (effort[0] >= '0' && effort[0] <= '9') ||
            effort[0] == '-') {
            cm_json_err_set(je, CM_ERR_INVAL, "reasoning_effort",
                            "must be one of none, minimal, low, medium, high, xhigh, max, auto");
            rc = CM_ERR_INVAL;
            goto out;
        }
        think = true;
    }
    if ((rc = cm_json_new_object(&body)) || (rc = cm_json_new_array(&t.contents)) ||
        (rc = cm_json_new_array(&t.system)) || (rc = cm_json_new_object(&t.call_ids)))
        goto out;
    cJSON_ArrayForEach(m, messages)
    {
        if ((rc = conv_message(m, &t, je)) != CM_OK) {
            cm_json_err_scope(je, "messages[%zu]", i);
            goto out;
        }
        i++;
    }
    if (!cJSON_GetArraySize(t.contents)) {
        cm_json_err_set(je, CM_ERR_INVAL, "messages",
                        "must hold a user or assistant message besides system ones");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cm_json_adopt(body, "contents", &t.contents)))
        goto out;
    if (cJSON_GetArraySize(t.system) > 0) {
        cJSON *si = NULL;
        if ((rc = cm_json_new_object(&si)) || (rc = cm_json_set_string(si, "role", "user")) ||
            (rc = cm_json_adopt(si, "parts", &t.system)) ||
            (rc = cm_json_adopt(body, "systemInstruction", &si))) {
            cJSON_Delete(si);
            goto out;
        }
    }
    tools = given(req, "tools");
    if (tools && (rc = conv_tools(tools, body, &has_decls, je)))
        goto out;
    tc = given(req, "tool_choice");
    if (tc && has_decls && (rc = conv_tool_choice(tc, body, je)))
        goto out;
    if ((rc = conv_generation(req, think, budget, body, je)) ||
        (rc = cm_json_set_string(body, "model", base)))
        goto out;
    *out = body;
    body = NULL;
out:
    cm_free(base);
    cJSON_Delete(t.contents);
    cJSON_Delete(t.system);
    cJSON_Delete(t.call_ids);
    cJSON_Delete(body);
    return rc;
}

int cp_tr_chat_gemini_request(const cJSON *req, cJSON **out, char **base_model,
                              struct cp_tr_err *err)
{
    cJSON *body = NULL, *model;
    char *base;
    int rc;

    if (!out || !base_model) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_request(req, &body, err, build_request)))
        return rc;
    model = cJSON_DetachItemFromObjectCaseSensitive(body, "model");
    base = cm_strdup(model->valuestring);
    cJSON_Delete(model);
    if (!base) {
        cJSON_Delete(body);
        cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    *out = body;
    *base_model = base;
    return CM_OK;
}

/* ---- upstream: shared by the stream and the aggregator ---- */

int cp_tr_gemini_usage_metadata(const cJSON *um, struct cp_tr_usage *u)
{
    int64_t v[5] = {0, 0, 0, 0, 0};
    static const char *const names[5] = {"promptTokenCount", "candidatesTokenCount",
                                         "thoughtsTokenCount", "cachedContentTokenCount",
                                         "totalTokenCount"};

    if (!cJSON_IsObject(um) || !u)
        return CM_ERR_NOTFOUND;
    for (size_t i = 0; i < 5; i++)
        (void)cm_json_opt_int64(um, names[i], 0, CM_JSON_INT_MAX / 8, 0, &v[i], NULL);
    u->input = v[0];
    u->output = v[1] + v[2];
    u->reasoning = v[2];
    u->cached = v[3];
    u->total = v[4] ? v[4] : u->input + u->output;
    return CM_OK;
}

/* The GenerateContentResponse in an event: .response when Gemini CLI wrapped it. */
static const cJSON *unwrap(const cJSON *ev)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(ev, "response");
    return cJSON_IsObject(r) ? r : ev;
}

/* The error object an event carries (raw or wrapped), or NULL. */
static const cJSON *error_of(const cJSON *ev)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(ev, "error");

    if (cJSON_IsObject(e))
        return e;
    e = cJSON_GetObjectItemCaseSensitive(unwrap(ev), "error");
    return cJSON_IsObject(e) ? e : NULL;
}

/* The HTTP status of a google.rpc status name. */
static unsigned status_of(const char *s)
{
    static const struct {
        const char *name;
        unsigned status;
    } map[] = {
        {"INVALID_ARGUMENT", 400},
        {"FAILED_PRECONDITION", 400},
        {"OUT_OF_RANGE", 400},
        {"UNAUTHENTICATED", 401},
        {"PERMISSION_DENIED", 403},
        {"NOT_FOUND", 404},
        {"ABORTED", 409},
        {"ALREADY_EXISTS", 409},
        {"RESOURCE_EXHAUSTED", 429},
        {"CANCELLED", 499},
        {"INTERNAL", 500},
        {"UNIMPLEMENTED", 501},
        {"UNAVAILABLE", 503},
        {"DEADLINE_EXCEEDED", 504},
    };

    for (size_t i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].status;
    return 502;
}

/* An error object @p eo into @p e (rc CM_ERR_UPSTREAM). */
static void gemini_error(const cJSON *eo, struct cp_tr_err *e)
{
    const char *st = cp_tr_str_member(eo, "status", NULL);
    const char *msg = cp_tr_str_member(eo, "message", "");
    int64_t code = 0;
    unsigned status;

    (void)cm_json_opt_int64(eo, "code", 0, 999, 0, &code, NULL);
    status = code >= 400 && code <= 599 ? (unsigned)code : status_of(st);
    cp_tr_err_set(e, CM_ERR_UPSTREAM, status, "", cp_tr_type_for_status(status), st ? st : "", "%s",
                  msg[0] ? msg : "upstream error");
}

/* Gemini finishReason (or a blocked prompt) -> OpenAI finish_reason. */
static const char *finish_reason(const char *reason, bool blocked, bool had_calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};

    if (had_calls)
        return "tool_calls";
    if (blocked)
        return "content_filter";
    if (cp_tr_str_eq(reason, "MAX_TOKENS"))
        return "length";
    for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); i++)
        if (cp_tr_str_eq(reason, filtered[i]))
            return "content_filter";
    return "stop"; /* STOP, MALFORMED_FUNCTION_CALL, OTHER, ... */
}

/* candidates[0].finishReason, else promptFeedback.blockReason (*@p blocked), else NULL. */
static const char *reason_of(const cJSON *r, bool *blocked)
{
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "candidates"), 0);
    const char *s = cp_tr_str_member(c0, "finishReason", NULL);

    *blocked = false;
    if (s && s[0])
        return s;
    s = cp_tr_str_member(cJSON_GetObjectItemCaseSensitive(r, "promptFeedback"), "blockReason",
                         NULL);
    if (s && s[0]) {
        *blocked = true;
        return s;
    }
    return NULL;
}

/* The parts of candidates[0] (borrowed; NULL when none). */
static const cJSON *parts_of(const cJSON *r)
{
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "candidates"), 0);
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "content"),
                                            "parts");
}

/* A functionCall part's id: its own, else "call_<chunk id>_<index>" (caller frees). */
static char *call_id(const cJSON *fc, const char *chunk_id, size_t index)
{
    const char *own = cp_tr_str_member(fc, "id", NULL);
    struct cm_buf b;

    if (own && own[0])
        return cm_strdup(own);
    cm_buf_init(&b, 4096);
    if (cm_buf_appendf(&b, "call_%s_%zu", chunk_id, index)) {
        cm_buf_cleanup(&b);
        return NULL;
    }
    return cm_buf_release(&b, NULL);
}

/* A functionCall's args printed ("{}" when absent; caller frees). */
static char *call_args(const cJSON *fc)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(fc, "args");
    char *s = NULL;

    if (!a || cJSON_IsNull(a))
        return cm_strdup("{}");
    if (cJSON_IsString(a))
        return cm_strdup(a->valuestring);
    if (cm_json_print(a, &s, NULL))
        return NULL;
    return s;
}

/* {"type":"image_url","image_url":{"url":"data:<mime>;base64,<data>"}} (+ index >= 0). */
static int image_new(const cJSON *inline_data, int64_t index, cJSON **out)
{
    cJSON *o = NULL, *iu = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, (size_t)64 << 20);
    if (cm_buf_appendf(&b, "data:%s;base64,%s",
                       cp_tr_str_member(inline_data, "mimeType", "image/png"),
                       cp_tr_str_member(inline_data, "data", ""))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if ((rc = cm_json_new_object(&o)) ||
        (index >= 0 && (rc = cm_json_set_int64(o, "index", index))) ||
        (rc = cm_json_set_string(o, "type", "image_url")) || (rc = cm_json_new_object(&iu)) ||
        (rc = cm_json_set_stringn(iu, "url", b.data, b.len)) ||
        (rc = cm_json_adopt(o, "image_url", &iu)))
        goto out;
    *out = o;
    o = NULL;
out:
    cJSON_Delete(iu);
    cJSON_Delete(o);
    cm_buf_cleanup(&b);
    return rc;
}

/* ---- the stream ---- */

int cp_tr_chat_gemini_stream_init(struct cp_tr_chat_gemini_stream *st, const cJSON *client_req,
                                  const char *id, int64_t created, struct cp_tr_err *err)
{
    struct cp_tr_chat_gemini_stream s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!st || !id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_chunker_init(&s._ck, client_req, id, created))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        return rc;
    }
    *st = s;
    return CM_OK;
}

void cp_tr_chat_gemini_stream_cleanup(struct cp_tr_chat_gemini_stream *st)
{
    if (!st)
        return;
    cp_tr_chat_chunker_cleanup(&st->_ck);
    cm_free(st->_finish);
    st->_finish = NULL;
}

int cp_tr_chat_gemini_stream_usage(const struct cp_tr_chat_gemini_stream *st,
                                   struct cp_tr_usage *out)
{
    if (!st || !out || !st->_usage_seen)
        return CM_ERR_NOTFOUND;
    *out = st->_usage;
    return CM_OK;
}

bool cp_tr_chat_gemini_stream_has_content(const struct cp_tr_chat_gemini_stream *st)
{
    return st && st->_content;
}

static int emit_text(struct cp_tr_chat_gemini_stream *st, const char *key, const char *val,
                     struct cm_buf *out)
{
    int rc;

    if (!val[0])
        return CM_OK;
    if ((rc = cp_tr_chat_emit_delta(&st->_ck, key, val, out)))
        return rc;
    st->_content = true;
    return CM_OK;
}

static int emit_call(struct cp_tr_chat_gemini_stream *st, const cJSON *fc, struct cm_buf *out)
{
    char *id = NULL, *args = NULL;
    int rc;

    if (st->_ncalls >= CP_TR_CHAT_GEMINI_MAX_TOOLS)
        return CM_ERR_LIMIT;
    if (!(id = call_id(fc, st->_ck._id, st->_ncalls)) || !(args = call_args(fc))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if ((rc = cp_tr_chat_emit_tool_call(&st->_ck, st->_ncalls, id, cp_tr_str_member(fc, "name", ""),
                                        args, out)))
        goto out;
    st->_ncalls++;
    st->_content = true;
out:
    cm_free(id);
    cm_free(args);
    return rc;
}

static int emit_image(struct cp_tr_chat_gemini_stream *st, const cJSON *inline_data,
                      struct cm_buf *out)
{
    cJSON *arr = NULL, *img = NULL;
    int rc;

    if (st->_nimages >= CP_TR_CHAT_GEMINI_MAX_IMAGES)
        return CM_ERR_LIMIT;
    if ((rc = image_new(inline_data, (int64_t)st->_nimages, &img)) ||
        (rc = cm_json_new_array(&arr)) || (rc = cm_json_adopt(arr, NULL, &img)))
        goto out;
    if ((rc = cp_tr_chat_emit_delta_item(&st->_ck, "images", &arr, out)))
        goto out;
    st->_nimages++;
    st->_content = true;
out:
    cJSON_Delete(img);
    cJSON_Delete(arr);
    return rc;
}

/* One GenerateContentResponse @p r -> chunks; its finish reason and usage remembered. */
static int stream_response(struct cp_tr_chat_gemini_stream *st, const cJSON *r, struct cm_buf *out)
{
    const cJSON *p, *um = cJSON_GetObjectItemCaseSensitive(r, "usageMetadata");
    const char *reason;
    bool blocked = false;
    int rc;

    if ((rc = cp_tr_chat_chunker_set_model(&st->_ck, cp_tr_str_member(r, "modelVersion", NULL))))
        return rc;
    cJSON_ArrayForEach(p, parts_of(r))
    {
        const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(p, "inlineData");
        const char *text = cp_tr_str_member(p, "text", NULL);
        rc = CM_OK;
        if (cJSON_IsObject(fc))
            rc = emit_call(st, fc, out);
        else if (cJSON_IsObject(in))
            rc = emit_image(st, in, out);
        else if (text)
            rc = emit_text(st,
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "thought"))
                               ? "reasoning_content"
                               : "content",
                           text, out);
        if (rc)
            return rc;
    }
    if (cp_tr_gemini_usage_metadata(um, &st->_usage) == CM_OK)
        st->_usage_seen = true;
    if ((reason = reason_of(r, &blocked)) != NULL) {
        char *s = cm_strdup(reason);
        if (!s)
            return CM_ERR_NOMEM;
        cm_free(st->_finish);
        st->_finish = s;
        st->_blocked = blocked;
    }
    return CM_OK;
}

int cp_tr_chat_gemini_stream_event(struct cp_tr_chat_gemini_stream *st, const char *type,
                                   size_t type_len, const char *data, size_t data_len,
                                   struct cm_buf *out, struct cp_tr_err *err)
{
    struct cp_tr_err e;
    const cJSON *eo;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    (void)type;
    (void)type_len;
    if (!st || !out || !cp_tr_chat_chunker_ready(&st->_ck))
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    rc = cp_tr_parse_event(NULL, 0, data, data_len, &ev, &t, &tl, &e);
    if (rc == CM_ERR_UPSTREAM) {
        st->_done = true;
        return cp_tr_chat_fail(&e, out, err);
    }
    if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    if ((eo = error_of(ev)) != NULL) {
        st->_done = true;
        gemini_error(eo, &e);
        rc = cp_tr_chat_fail(&e, out, err);
    } else if ((rc = stream_response(st, unwrap(ev), out))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
    }
    cJSON_Delete(ev);
    return rc;
}

int cp_tr_chat_gemini_stream_finish(struct cp_tr_chat_gemini_stream *st, struct cm_buf *out,
                                    struct cp_tr_err *err)
{
    static const struct cp_tr_usage zero = {0, 0, 0, 0, 0};
    struct cp_tr_err e;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    st->_done = true;
    if (!st->_finish) {
        cp_tr_early_eof_error(&e, CP_TR_GEMINI_EARLY_EOF_MSG);
        return cp_tr_chat_fail(&e, out, err);
    }
    rc = cp_tr_chat_emit_finish(&st->_ck, finish_reason(st->_finish, st->_blocked, st->_ncalls > 0),
                                st->_usage_seen ? &st->_usage : &zero, out);
    if (rc)
        cp_tr_server_error(err, rc, cm_err_str(rc));
    return rc;
}

/* ---- non-stream aggregation ---- */

struct agg {
    const char *id; /* chunk id: the seed of call ids */
    struct cp_tr_chat_answer a;
    struct cm_buf reasoning; /* thought texts, joined as they come */
    cJSON *images;           /* message.images (owned) */
    char *model;             /* the last modelVersion (owned) */
    char *finish;            /* the last finishReason / blockReason (owned) */
    bool blocked;
    bool usage_seen;
    struct cp_tr_usage usage;
    size_t ncalls;
    bool oom; /* agg_on_event() ran out of memory */
};

static int agg_set(char **dst, const char *s)
{
    char *c;

    if (!s || !s[0])
        return CM_OK;
    if (!(c = cm_strdup(s)))
        return CM_ERR_NOMEM;
    cm_free(*dst);
    *dst = c;
    return CM_OK;
}

/* One event or response object @p ev into @p a (CM_ERR_UPSTREAM with @p uerr for errors). */
static int agg_response(struct agg *a, const cJSON *ev, struct cp_tr_err *uerr)
{
    const cJSON *r, *p, *eo;
    const char *reason;
    bool blocked = false;
    int rc;

    if (!cJSON_IsObject(ev)) {
        cp_tr_malformed_error(uerr, "a response is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if ((eo = error_of(ev)) != NULL) {
        gemini_error(eo, uerr);
        return CM_ERR_UPSTREAM;
    }
    r = unwrap(ev);
    if ((rc = agg_set(&a->model, cp_tr_str_member(r, "modelVersion", NULL))))
        return rc;
    cJSON_ArrayForEach(p, parts_of(r))
    {
        const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(p, "inlineData");
        const char *text = cp_tr_str_member(p, "text", NULL);
        rc = CM_OK;
        if (cJSON_IsObject(fc)) {
            char *id = NULL, *args = NULL;
            if (a->ncalls >= CP_TR_CHAT_GEMINI_MAX_TOOLS)
                return CM_ERR_LIMIT;
            if (!(id = call_id(fc, a->id, a->ncalls)) || !(args = call_args(fc)))
                rc = CM_ERR_NOMEM;
            else
                rc = cp_tr_chat_answer_tool_call(&a->a, id, cp_tr_str_member(fc, "name", ""), args);
            cm_free(id);
            cm_free(args);
            a->ncalls++;
        } else if (cJSON_IsObject(in)) {
            cJSON *img = NULL;
            if (cJSON_GetArraySize(a->images) >= CP_TR_CHAT_GEMINI_MAX_IMAGES)
                return CM_ERR_LIMIT;
            if (!(rc = image_new(in, -1, &img)))
                rc = cm_json_adopt(a->images, NULL, &img);
        } else if (text && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "thought"))) {
            rc = cm_buf_append_str(&a->reasoning, text);
        } else if (text && text[0]) {
            rc = cp_tr_chat_answer_text(&a->a, text);
        }
        if (rc)
            return rc == CM_ERR_LIMIT ? CM_ERR_LIMIT : CM_ERR_NOMEM;
    }
    if (cp_tr_gemini_usage_metadata(cJSON_GetObjectItemCaseSensitive(r, "usageMetadata"),
                                    &a->usage) == CM_OK)
        a->usage_seen = true;
    if ((reason = reason_of(r, &blocked)) != NULL) {
        if ((rc = agg_set(&a->finish, reason)))
            return rc;
        a->blocked = blocked;
    }
    return CM_OK;
}

/*
 * cp_tr_body_fn of the SSE path: never stops early (Gemini has no terminal event), and
 * never returns 1, which the reader takes for "terminal event" (CM_ERR_NOMEM is 1).
 */
static int agg_on_event(void *ud, const char *t, size_t tl, cJSON *ev, struct cp_tr_err *uerr)
{
    (void)t;
    (void)tl;
    struct agg *a = ud;
    int rc = agg_response(a, ev, uerr);

    if (rc == CM_ERR_NOMEM) { /* 1 would read as "terminal event": report it aside */
        a->oom = true;
        return CM_ERR_INTERNAL;
    }
    return rc;
}

/* A JSON body (object or array of objects) into @p a. */
static int agg_json(struct agg *a, const char *body, size_t len, struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = 128};
    cJSON *root = NULL;
    const cJSON *r;
    int rc;

    rc = cm_json_parse(body, len, &opts, &root, NULL);
    if (rc == CM_ERR_NOMEM) {
        cp_tr_server_error(err, rc, "out of memory");
        return rc;
    }
    if (rc || (!cJSON_IsObject(root) && !cJSON_IsArray(root))) {
        cJSON_Delete(root);
        cp_tr_malformed_error(err, "the body is not a JSON object or array");
        return CM_ERR_UPSTREAM;
    }
    if (cJSON_IsObject(root)) {
        rc = agg_response(a, root, err);
    } else {
        cJSON_ArrayForEach(r, root)
        {
            if ((rc = agg_response(a, r, err)))
                break;
        }
    }
    cJSON_Delete(root);
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event", "%s",
                      "upstream answer too large (calls or images)");
    else if (rc && rc != CM_ERR_UPSTREAM)
        cp_tr_server_error(err, rc, cm_err_str(rc));
    return rc;
}

/* The completion of @p a into *@p out. */
static int agg_build(struct agg *a, const cJSON *client_req, int64_t created, cJSON **out,
                     struct cp_tr_usage *u)
{
    const char *model = a->model ? a->model : cp_tr_str_member(client_req, "model", "");
    cJSON *res = NULL, *msg;
    int rc;

    if (a->reasoning.len && (rc = cp_tr_chat_answer_reasoning(&a->a, a->reasoning.data)))
        return rc;
    if (!a->usage_seen)
        memset(&a->usage, 0, sizeof(a->usage));
    if ((rc = cp_tr_chat_completion_new(
             a->id, model, created, &a->a,
             finish_reason(a->finish, a->blocked, cp_tr_chat_answer_has_calls(&a->a)), &a->usage,
             &res)))
        return rc;
    msg = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "choices"), 0), "message");
    if (cJSON_GetArraySize(a->images) > 0 && (rc = cm_json_adopt(msg, "images", &a->images))) {
        cJSON_Delete(res);
        return rc;
    }
    *out = res;
    *u = a->usage;
    return CM_OK;
}

/* True when @p body (after blanks) starts a JSON value rather than SSE. */
static bool is_json_body(const char *body, size_t len)
{
    size_t i = 0;

    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return i < len && (body[i] == '{' || body[i] == '[');
}

int cp_tr_chat_gemini_aggregate(const char *body, size_t len, const cJSON *client_req,
                                const char *id, int64_t created, cJSON **out, struct cp_tr_usage *u,
                                struct cp_tr_err *err)
{
    struct cp_tr_usage usage;
    struct agg a;
    cJSON *res = NULL;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!out || !id || (!body && len)) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    a.id = id;
    cm_buf_init(&a.reasoning, (size_t)64 << 20);
    if ((rc = cp_tr_chat_answer_init(&a.a)) || (rc = cm_json_new_array(&a.images))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        goto out;
    }
    if (is_json_body(body, len)) {
        if ((rc = agg_json(&a, body, len, err)))
            goto out;
    } else {
        rc = cp_tr_read_body(body, len, true, agg_on_event, &a, CP_TR_GEMINI_EARLY_EOF_MSG,
                             "upstream answer too large (an event, calls or images)", err);
        if (a.oom) {
            rc = CM_ERR_NOMEM;
            cp_tr_server_error(err, rc, "out of memory");
        } else if (rc == CM_ERR_TIMEOUT && a.finish) {
            rc = CM_OK; /* the body ended after a finishReason: that is Gemini's end */
        }
        if (rc)
            goto out;
    }
    if (!a.finish) {
        cp_tr_early_eof_error(err, CP_TR_GEMINI_EARLY_EOF_MSG);
        rc = CM_ERR_TIMEOUT;
        goto out;
    }
    if ((rc = agg_build(&a, client_req, created, &res, &usage))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        goto out;
    }
    *out = res;
    if (u)
        *u = usage;
out:
    cp_tr_chat_answer_cleanup(&a.a);
    cm_buf_cleanup(&a.reasoning);
    cJSON_Delete(a.images);
    cm_free(a.model);
    cm_free(a.finish);
    return rc;
}
