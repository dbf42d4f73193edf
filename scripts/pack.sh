#!/usr/bin/env bash
# Packs every publishable package (not "private") into .packs/<scope>-<name>.tgz, e.g.
# .packs/stream-core.tgz: the same tarballs `changeset publish` would upload. Until the packages
# are on the npm registry, a project installs these files (README, "Install").
#   bash scripts/pack.sh            # pnpm pack:all
#   PACK_DIR=/tmp/packs bash scripts/pack.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${PACK_DIR:-$PWD/.packs}"
mkdir -p "$out"
pnpm run build >&2
for dir in packages/* apps/*; do
  [ -f "$dir/package.json" ] || continue
  [ "$(node -p 'require(process.argv[1]).private === true' "$PWD/$dir/package.json")" = true ] && continue
  (cd "$dir" && pnpm pack --out "$out/%s.tgz" >/dev/null)
  echo "$out/$(node -p 'require(process.argv[1]).name.replace("@","").replace("/","-")' "$PWD/$dir/package.json").tgz"
done
