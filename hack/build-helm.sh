#!/usr/bin/env bash
# Builds helm from source through the Go module proxy.
#
# Usage: hack/build-helm.sh OUTFILE VERSION
#   e.g. hack/build-helm.sh bin/helm/v3.22.0/helm v3.22.0
#
# Does nothing if OUTFILE exists. The binary is installed into a temporary
# directory and renamed into place at the end, so an interrupted build never
# leaves a half-written binary behind.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 OUTFILE VERSION" >&2
	exit 2
fi
OUTFILE=$1
VERSION=v${2#v}

if [[ -x "${OUTFILE}" ]]; then
	echo "[build-helm] ${OUTFILE}: up to date" >&2
	exit 0
fi

export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

outdir=$(dirname "${OUTFILE}")
mkdir -p "${outdir}"
tmp=$(mktemp -d "${outdir}/.tmp-helm.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT
trap 'exit 130' INT TERM

echo "[build-helm] building helm ${VERSION}" >&2
# `go install pkg@version` runs outside any module, so the caller's go.mod
# does not matter. The -X sets `helm version` (ignored if the symbol moves).
GOBIN="$(cd "${tmp}" && pwd)" go install -trimpath \
	-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${VERSION}" \
	"helm.sh/helm/v3/cmd/helm@${VERSION}"
"${tmp}/helm" version --short >/dev/null
mv -f "${tmp}/helm" "${OUTFILE}"
echo "[build-helm] built ${OUTFILE}" >&2
