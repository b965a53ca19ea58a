#!/usr/bin/env bash
# Fallback step of the composite action (action.yml, step `fallback`): when no release archive
# matches (the action is used from a branch, or on an OS we do not build for), build the binary
# from the action's own source with the locked dependency versions.
#
# Output: bin=<path>. Needs cargo on PATH (GitHub-hosted runners have it).
set -euo pipefail
command -v cargo >/dev/null 2>&1 || {
    echo "::error title=flow install::no release archive matches this runner and cargo is not installed to build flow from source"
    exit 1
}
root="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/flow/source"
echo "::group::cargo install --locked --path $GITHUB_ACTION_PATH"
cargo install --locked --path "$GITHUB_ACTION_PATH" --root "$root" --bin flow
echo "::endgroup::"
exe=flow
[ "${RUNNER_OS:-}" = Windows ] && exe=flow.exe
printf 'bin=%s\n' "$root/bin/$exe" >>"$GITHUB_OUTPUT"
