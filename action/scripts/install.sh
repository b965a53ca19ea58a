#!/usr/bin/env bash
# Install step of the composite action (action.yml, step `install`).
#
# Reads the committed release manifest ($GITHUB_ACTION_PATH/manifest.json, written by
# `flow publish manifest`; format 1, see crates/flow-publish/manifest.schema.json), picks the
# archive for this runner's OS and architecture, downloads it from the manifest's absolute URL
# (nothing depends on `github.action_repository`, which is empty inside composite steps:
# actions/runner#2473), verifies its SHA-256 and fails closed on a mismatch, then unpacks it into
# the runner's tool cache ($RUNNER_TOOL_CACHE/flow/<version>/<arch>, marked complete with
# <arch>.complete as @actions/tool-cache does) so later jobs on the same runner skip the download.
#
# Outputs: found=true and bin=<path> when installed. When no archive matches (the action is used
# from a branch or a commit that was never released, or on a platform without a release build):
# found=false, and cache-key / cache-path for the next steps, which restore a binary built earlier
# for the same source and platform from the Actions cache, or build it (fallback.sh) and save it.
# Any other failure (a manifest of an unknown format, a bad digest, a failed download) exits 1.
#
# Inputs (env): RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_ACTION_PATH,
# GITHUB_OUTPUT.
set -euo pipefail

# The manifest formats this script reads.
KNOWN_FORMAT=1

out() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }
die() {
    echo "::error title=flow install::$1"
    exit 1
}

# sha256 of files (one "digest  name" line each), or of stdin with no argument.
sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$@"
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$@"
    else
        die "neither sha256sum nor shasum is installed: cannot verify the download"
    fi
}

# A digest of the action's source tree (the repository the runner checked out for this ref):
# the same commit gives the same key, any change to the source a new one. Paths are relative
# and sorted, so the key does not depend on where the runner put the action.
source_digest() {
    local root="$GITHUB_ACTION_PATH/.." files=() f
    while IFS= read -r -d '' f; do files+=("$f"); done < <(
        cd "$root" && find . -type f ! -path './.git/*' ! -path './target/*' \
            ! -path '*/node_modules/*' ! -path './.venv/*' -print0 | LC_ALL=C sort -z
    )
    (cd "$root" && sha256 "${files[@]}") | sha256 | cut -c1-32
}

no_release() {
    echo "::notice title=flow::$1: using a binary built from this action's source (Actions cache, or a build on a miss)"
    exe=flow
    [ "${RUNNER_OS:-}" = Windows ] && exe=flow.exe
    local key
    key="flow-bin-v1-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}-$(source_digest)"
    out found false
    out cache-key "$key"
    out cache-path "${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/flow/source/$key"
    out exe "$exe"
    exit 0
}

manifest="$GITHUB_ACTION_PATH/manifest.json"
[ -f "$manifest" ] || no_release "no release manifest at $manifest"

# Prints "format<TAB>version" of the manifest, then for target $1 "asset<TAB>url<TAB>sha256"
# (or nothing when the manifest has no such target).
read_manifest() {
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg t "$1" '([(.format // "missing" | tostring), (.version // "" | tostring)] | @tsv),
            ((.targets // {})[$t] // empty | [.asset // "", .url // "", .sha256 // ""] | @tsv)' \
            "$manifest"
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$manifest" "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("%s\t%s" % (m.get("format", "missing"), m.get("version", "")))
e = (m.get("targets") or {}).get(sys.argv[2])
if e:
    print("\t".join(str(e.get(k, "")) for k in ("asset", "url", "sha256")))
PY
    else
        die "reading $manifest needs jq or python3"
    fi
}

# Candidate target triples for this runner, preferred first (static musl builds on Linux).
case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) targets="x86_64-unknown-linux-musl x86_64-unknown-linux-gnu" ;;
    Linux/ARM64) targets="aarch64-unknown-linux-musl aarch64-unknown-linux-gnu" ;;
    macOS/X64) targets="x86_64-apple-darwin" ;;
    macOS/ARM64) targets="aarch64-apple-darwin" ;;
    Windows/X64) targets="x86_64-pc-windows-msvc" ;;
    *) targets="" ;;
esac

header=""
entry=""
for target in ${targets:-none}; do
    lines="$(read_manifest "$target")" || die "$manifest is not valid JSON"
    header="$(printf '%s\n' "$lines" | sed -n 1p)"
    IFS=$'\t' read -r format version <<<"$header"
    [ "$format" = "$KNOWN_FORMAT" ] ||
        die "$manifest has manifest format $format; this install script reads format $KNOWN_FORMAT. Use the action at a ref whose manifest it was written for."
    entry="$(printf '%s\n' "$lines" | sed -n 2p)"
    [ -z "$entry" ] || break
done
[ -n "$targets" ] || no_release "no release archive is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
[ -n "$entry" ] || no_release "the release manifest has no archive for $targets"
IFS=$'\t' read -r file url sha256 <<<"$entry"

case "$version" in [0-9]*) ;; *) die "manifest version is not a version: $version" ;; esac
case "$version" in *[!0-9A-Za-z.+-]*) die "manifest version is not a version: $version" ;; esac
case "$file" in
    "" | .* | */* | *\\*) die "manifest entry for $target: unsafe or missing asset file name: '$file'" ;;
esac
case "$sha256" in
    *[!0-9a-f]* | "") die "manifest entry for $target: sha256 must be 64 lower-case hex digits" ;;
    *) [ "${#sha256}" -eq 64 ] || die "manifest entry for $target: sha256 must be 64 lower-case hex digits" ;;
esac
# Absolute https only; plain http only to this machine (local rehearsals and tests).
case "$url" in
    https://?*) proto="=https" ;;
    http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/*) proto="=http" ;;
    "") die "manifest entry for $target has no url (manifest format $KNOWN_FORMAT needs an absolute URL per target)" ;;
    *) die "manifest entry for $target: url must be an absolute https URL, found: $url" ;;
esac

exe=flow
[ "$RUNNER_OS" = Windows ] && exe=flow.exe
arch_lower="$(printf '%s' "$RUNNER_ARCH" | tr '[:upper:]' '[:lower:]')"
dir="$RUNNER_TOOL_CACHE/flow/$version/$arch_lower"
if [ -f "$dir.complete" ] && [ -x "$dir/$exe" ]; then
    echo "flow $version found in the tool cache: $dir"
    out found true
    out bin "$dir/$exe"
    exit 0
fi

work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/flow-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "Downloading $url"
curl --fail --silent --show-error --location --retry 3 --proto "$proto" --proto-redir "$proto" \
    --output "$work/$file" "$url" || die "downloading $url failed"

actual="$(sha256 "$work/$file" | cut -d' ' -f1)"
[ "$actual" = "$sha256" ] ||
    die "SHA-256 mismatch for $file: the manifest says $sha256, the download is $actual; refusing to install it"

mkdir -p "$work/unpacked"
case "$file" in
    *.tar.gz | *.tgz) tar -xzf "$work/$file" -C "$work/unpacked" ;;
    *.zip) unzip -q "$work/$file" -d "$work/unpacked" ;;
    *) die "unknown archive format: $file" ;;
esac
found="$(find "$work/unpacked" -type f -name "$exe" | head -n 1)"
[ -n "$found" ] || die "$file holds no $exe"

rm -rf "$dir" "$dir.complete"
mkdir -p "$dir"
cp "$found" "$dir/$exe"
chmod +x "$dir/$exe"
touch "$dir.complete"
echo "Installed flow $version ($target) to $dir"
out found true
out bin "$dir/$exe"
