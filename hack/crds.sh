#!/usr/bin/env bash
# Writes the CRDs the operator generates into crds/ and the charts' byte-identical
# copies (a test fails when any of them is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
crd() { cargo run -q -p agora-operator -- crd "$@"; }
for dir in crds charts/agora-operator/files/crds charts/agora/crds; do
  crd >"$dir/socialplatforms.agora.dev.yaml"
  crd backups >"$dir/socialplatformbackups.agora.dev.yaml"
done
