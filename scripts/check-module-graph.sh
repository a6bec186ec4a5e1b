#!/usr/bin/env bash
# The portable modules' dependency graph is stated twice: in Package.swift (the
# host build) and in the Makefile's <Module>_DEPS (the board build, which compiles
# each module against the ones it imports). This compares the two, and checks that
# every `import` of a portable module in Sources/<Module> is a declared dependency.
# Any difference fails, naming it. Run from the package root (`make test` does).
set -euo pipefail

fail() { echo "module graph: $*" >&2; exit 1; }
# "Module: Dep Dep" per portable module (regular targets under Sources/), deps sorted.
package=$(swift package dump-package | python3 -c '
import json, sys
for t in json.load(sys.stdin)["targets"]:
    if t["type"] != "regular" or t.get("path") is not None:
        continue
    deps = sorted((d.get("byName") or d.get("target"))[0] for d in t["dependencies"])
    print(t["name"] + ": " + " ".join(deps))' | sort)
[ -n "$package" ] || fail "swift package dump-package listed no portable module"

makefile=$(make -s --no-print-directory module-graph | while IFS=: read -r name deps; do
    echo "$name: $(printf '%s\n' $deps | sort | xargs)"
done | sort)

if [ "$package" != "$makefile" ]; then
    echo "module graph: Package.swift and the Makefile's *_DEPS / LIBS disagree" >&2
    diff -u --label Package.swift <(echo "$package") --label Makefile <(echo "$makefile") >&2 || true
    exit 1
fi

modules=$(echo "$package" | cut -d: -f1)
status=0
while IFS=: read -r name deps; do
    for imported in $(sed -n 's/^\(@testable \)\{0,1\}import \([A-Za-z0-9_]*\).*/\2/p' Sources/"$name"/*.swift | sort -u); do
        grep -qxF "$imported" <<<"$modules" || continue          # the toolchain's modules
        grep -qw -- "$imported" <<<"$deps" && continue
        echo "module graph: Sources/$name imports $imported, which Package.swift and the Makefile do not list" >&2
        status=1
    done
done <<<"$package"
[ $status -eq 0 ] || exit 1
echo "module graph: Package.swift and the Makefile agree on $(echo "$modules" | wc -l) modules; imports match"
