#!/usr/bin/env bash
# Fallback step of the composite action (action.yml, step `fallback`), when no release archive
# matches (the action is used from a branch or an unreleased commit, or on a platform without a
# release build). The step before it restored $FLOW_CACHE_PATH from the Actions cache under
# $FLOW_CACHE_KEY (the action's source digest and the runner's OS/arch); when that holds a binary
# it is used as is. Otherwise flow is built from the action's own source with the locked
# dependency versions and the `dist` profile (thin LTO off, parallel codegen: minutes, not the
# ~20 of the release profile on two cores), the build time printed, and built=true tells the
# next step to save it to the Actions cache for the following runs.
#
# Outputs: bin=<path>, built=true|false. Needs cargo on PATH to build (GitHub-hosted runners
# have it).
set -euo pipefail
out() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }

root="${FLOW_CACHE_PATH:?the install step gives the cache path}"
exe=flow
[ "${RUNNER_OS:-}" = Windows ] && exe=flow.exe
bin="$root/bin/$exe"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    if [ "${FLOW_CACHE_HIT:-}" = true ]; then
        echo "flow restored from the Actions cache ($FLOW_CACHE_KEY): $bin"
    else
        echo "flow found from an earlier build on this runner: $bin"
    fi
    out bin "$bin"
    out built false
    exit 0
fi

command -v cargo >/dev/null 2>&1 || {
    echo "::error title=flow install::no release archive matches this runner, no build is cached for it, and cargo is not installed to build flow from source"
    exit 1
}
rm -rf "$root"
start=$(date +%s)
echo "::group::cargo install --locked --profile dist --path $GITHUB_ACTION_PATH"
CARGO_INCREMENTAL=0 cargo install --locked --profile dist --path "$GITHUB_ACTION_PATH" \
    --root "$root" --bin flow
echo "::endgroup::"
secs=$(($(date +%s) - start))
[ -x "$bin" ] || {
    echo "::error title=flow install::cargo install finished but $bin is missing"
    exit 1
}
echo "::notice title=flow::built flow from source in $((secs / 60))m$((secs % 60))s (profile dist); the next step saves it to the Actions cache as $FLOW_CACHE_KEY, so the next run of this commit on ${RUNNER_OS:-?}/${RUNNER_ARCH:-?} skips the build"
out bin "$bin"
out built true
out build-seconds "$secs"
