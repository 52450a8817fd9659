/* diag.c - how nncc tells the user what is wrong, and where.
 *
 * Every message is one line, GCC style (`FILE:LINE:COL: error: ...`), so that
 * editors can jump to the place. Model errors exit with status 1 right away:
 * nothing has been written yet, and a first error usually explains the rest.
 *
 * The typed accessors (node_int, node_num, ...) are where most user mistakes
 * are caught, so their messages name the field and quote what was written.
 */
#include "nncc.h"
#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ------------------------------------------------------------------------ */

/* A scalar can hold anything, newlines included; one error stays one line. */
static void print_one_line(const char *place, const char *kind, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    fprintf(stderr, "%s: %s: %s\n", place, kind, msg);
}

/* "FILE:LINE:COL", or "nncc" for a problem that belongs to no place. */
static const char *place_of(const Node *where, char *buf, size_t len)
{
    if (!where)
        return "nncc";
    snprintf(buf, len, "%s:%d:%d", where->file ? where->file : "nncc", where->line, where->col);
    return buf;
}

_Noreturn void error_at(const Node *where, const char *fmt, ...)
{
    char place[1200];
    va_list ap;
    va_start(ap, fmt);
    print_one_line(place_of(where, place, sizeof place), "error", fmt, ap);
    va_end(ap);
    exit(1);
}

_Noreturn void error_file(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_one_line(file, "error", fmt, ap);
    va_end(ap);
    exit(1);
}

void warn_at(const Node *where, const char *fmt, ...)
{
    char place[1200];
    va_list ap;
    va_start(ap, fmt);
    print_one_line(place_of(where, place, sizeof place), "warning", fmt, ap);
    va_end(ap);
}

/* What was written, short enough to quote in a message. Two buffers, so that
 * one message can quote two things. */
static const char *shown(const char *text)
{
    static char buf[2][64];
    static int which;
    char *out = buf[which ^= 1];
    size_t len = strlen(text), max = sizeof buf[0] - 4;
    if (len <= max)
        return strcpy(out, text);
    while (max > 0 && ((unsigned char)text[max] & 0xC0) == 0x80)
        max--;                      /* do not cut a UTF-8 character in half */
    memcpy(out, text, max);
    strcpy(out + max, "...");
    return out;
}

/* "'text'", "a list" or "a map", for "got ..." in messages. */
static const char *described(const Node *n)
{
    static char buf[80];
    if (n->kind == NODE_SEQ)
        return "a list";
    if (n->kind == NODE_MAP)
        return "a map";
    snprintf(buf, sizeof buf, n->quoted ? "the string \"%s\"" : "'%s'", shown(n->text));
    return buf;
}

/* ---- did you mean ---------------------------------------------------------------------- */

/* The runtime's, so that nncc and a trainer suggest alike. */
const char *closest_word(const char *word, const char *const *choices)
{
    return nn_closest_word(word, choices);
}

/* ---- typed access ---------------------------------------------------------------------- */

static void need_node(const Node *n, const char *what)
{
    if (!n)
        error_at(NULL, "missing %s", what);
}

Node *map_get(const Node *map, const char *key)
{
    if (!map)
        return NULL;
    if (map->kind != NODE_MAP)
        error_at(map, "expected a map of key: value pairs here, got %s", described(map));
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return map->items[i];
    return NULL;
}

/* "a, b, c": choices, as many as fit in buf. */
const char *listed(const char *const *choices, char *buf, size_t len)
{
    buf[0] = '\0';
    for (const char *const *c = choices; *c; c++) {
        size_t used = strlen(buf);
        if (used + strlen(*c) + 8 >= len) {
            snprintf(buf + used, len - used, ", ...");
            break;
        }
        snprintf(buf + used, len - used, "%s%s", c == choices ? "" : ", ", *c);
    }
    return buf;
}

_Noreturn void unsupported_word(const Node *n, const char *what, const char *const *choices)
{
    char list[2048];
    error_at(n, "unknown %s '%s'; supported: %s", what, shown(n->text),
             listed(choices, list, sizeof list));
}

_Noreturn void unknown_word(const Node *n, const char *what, const char *const *choices)
{
    const char *close = closest_word(n->text, choices);
    if (close)
        error_at(n, "unknown %s '%s'; did you mean '%s'?", what, shown(n->text), close);
    char list[1024];
    error_at(n, "unknown %s '%s' (known: %s)", what, shown(n->text),
             listed(choices, list, sizeof list));
}

void map_check_keys(const Node *map, const char *what, const char *const *allowed)
{
    need_node(map, what);
    if (map->kind != NODE_MAP)
        error_at(map, "%s must be a map of key: value pairs, got %s", what, described(map));
    for (int i = 0; i < map->n; i++) {
        const char *key = map->keys[i]->text;
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (known)
            continue;
        const char *hint = closest_word(key, allowed);
        if (hint)
            error_at(map->keys[i], "unknown key '%s' in %s; did you mean '%s'?", shown(key), what,
                     hint);
        char list[1024];
        error_at(map->keys[i], "unknown key '%s' in %s (it takes: %s)", shown(key), what,
                 listed(allowed, list, sizeof list));
    }
}

const char *node_str(const Node *n, const char *what)
{
    need_node(n, what);
    if (n->kind != NODE_SCALAR)
        error_at(n, "%s must be a string, got %s", what, described(n));
    return n->text;
}

/* The text of a scalar that must be a number: written without quotes. */
static const char *number_text(const Node *n, const char *what, const char *kind)
{
    need_node(n, what);
    if (n->kind != NODE_SCALAR || n->quoted)
        error_at(n, "%s must be %s, got %s", what, kind, described(n));
    return n->text;
}

static bool is_decimal_integer(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

long node_int(const Node *n, const char *what, long min, long max)
{
    const char *s = number_text(n, what, "an integer");
    if (!is_decimal_integer(s))
        error_at(n, "%s must be an integer, got %s", what, described(n));
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        error_at(n, "%s must be between %ld and %ld, got %s", what, min, max, shown(s));
    return v;
}

/* A decimal number as YAML and JSON write it: no hex, no inf or nan (though
 * 1e999 gets through, as inf, for the caller's "too large"). */
static bool parse_decimal(const char *s, size_t len, double *out)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf || strspn(s, "0123456789+-.eE") < len)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0' && end != buf;
}

double node_num(const Node *n, const char *what)
{
    const char *s = number_text(n, what, "a number");
    const char *slash = strchr(s, '/');
    double a, b = 1;
    bool ok = slash ? parse_decimal(s, (size_t)(slash - s), &a) &&
                      parse_decimal(slash + 1, strlen(slash + 1), &b)
                    : parse_decimal(s, strlen(s), &a);
    if (!ok)
        error_at(n, "%s must be a number (or A/B, as in 1/255), got %s", what, described(n));
    if (b == 0)
        error_at(n, "%s divides by zero: '%s'", what, shown(s));
    if (!isfinite(a) || !isfinite(b) || !isfinite(a / b))
        error_at(n, "%s is too large: '%s'", what, shown(s));
    return a / b;
}

/* YAML 1.1's booleans, which is what Keras's exports and most users write. */
bool node_bool(const Node *n, const char *what)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                       "on", "On", "ON", "y", "Y", NULL };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
                                      "off", "Off", "OFF", "n", "N", NULL };
    const char *s = number_text(n, what, "true or false");
    for (int i = 0; yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0)
            return true;
        if (strcmp(s, no[i]) == 0)
            return false;
    }
    error_at(n, "%s must be true or false, got %s", what, described(n));
}

bool is_c_identifier(const char *s)
{
    static const char *const keywords[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
        "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
        "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
        "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
        "_Static_assert", "_Thread_local", NULL,
    };
    size_t len = strlen(s);
    if (len == 0 || len > MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];   /* ASCII only, whatever the locale */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    for (int i = 0; keywords[i]; i++)
        if (strcmp(s, keywords[i]) == 0)
            return false;
    return true;
}

bool same_word(const char *a, const char *b)
{
    for (;; a++, b++) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
        if (!*a)
            return true;
    }
}
