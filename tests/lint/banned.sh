#!/usr/bin/env bash
# tests/lint/banned.sh - fails if C sources use functions we do not allow (after curl's
# checksrc): unbounded string functions, atoi, gets, strtok; and raw malloc/free
# outside common/src/alloc.c (all allocation goes through cm/alloc.h).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common cliproxyd meterd tests -name '*.[ch]')
bad=0
check() { # PATTERN WHAT [EXCLUDE-REGEX]
    local hits
    # strip /* ... */ on a line and whole comment lines, then look for the pattern
    hits=$(awk '{ l = $0; gsub(/\/\*.*\*\//, "", l); if (l !~ /^[ \t]*(\/\*|\*)/) print FILENAME ":" FNR ": " l }' $files |
           grep -E "$1" | grep -vE "${3:-^$}")
    if [ -n "$hits" ]; then
        echo "banned: $2"; echo "$hits" | sed 's/^/  /'; bad=1
    fi
}
check '(^|[^a-z_])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\(' \
      "strcpy/strcat/sprintf/gets/strtok/atoi (use snprintf, cm_buf, strtol)"
check '(^|[^a-z_.>])(malloc|calloc|realloc|free|strdup|strndup)\s*\(' \
      "raw allocation (use cm_malloc/cm_free from cm/alloc.h)" '^common/src/alloc\.c:'
[ $bad = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $bad
