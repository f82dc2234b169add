#!/usr/bin/env bash
# Builds the Kubernetes test harness's binaries from the Go module proxy, once per set of versions:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (v1.34.4), etcd (3.6.x),
# kwok (0.8.x) and helm (3.x). Cached outside the clone in
#   ${MLFLOW_PARALLELS_CACHE:-~/.cache/mlflow-parallels}/k8s/<versions>/bin
# so a second run (and CI on the same machine) reuses them. Prints the bin folder on its last line.
# Cold: about 12 minutes on 2 cores; warm: instant.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.21.4}
HELM_K8S_MINOR=${HELM_K8S_MINOR:-36} # helm 3.21 is built on client-go v0.36 (its Makefile says so)
CACHE=${MLFLOW_PARALLELS_CACHE:-$HOME/.cache/mlflow-parallels}
KEY="k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
ROOT="$CACHE/k8s/$KEY"
OUT="$ROOT/bin"
if [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi

# Never fall back to fetching from VCS hosts: the module proxy is the only source.
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOPROXY="${GOPROXY%,direct}" GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
mkdir -p "$ROOT/build/k8s" "$ROOT/build/etcd" "$OUT"
exec 3>&1 1>&2 # progress to stderr; only the bin folder goes to stdout
echo "building the Kubernetes harness ($KEY) from the Go module proxy into $ROOT — about 12 minutes the first time"
step() { local s=$SECONDS; "$@"; echo "  ${*:1:3}… took $((SECONDS - s)) s"; }

# Kubernetes: a wrapper module replaces each staging module (./staging/… in upstream's go.mod)
# with its published v0.Y.Z tag, so `go build` of the commands works from the proxy.
k8s_wrapper() {
  cd "$ROOT/build/k8s"
  rm -f go.mod go.sum
  local gomod staging="v0.${K8S_VERSION#v1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .GoMod)
  printf 'module parallels/k8s-harness\n\ngo 1.24.0\n\ngodebug default=go1.24\n' >go.mod
  grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}' | while read -r m; do
    go mod edit "-replace=$m=$m@$staging"
  done
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
}
k8s_build() {
  cd "$ROOT/build/k8s"
  local minor ld="-s -w" p
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -ldflags "$ld" -o "$OUT/" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}
# etcd's server module has replace lines of its own, so `go install …@v` refuses it: a wrapper again.
etcd_build() {
  cd "$ROOT/build/etcd"
  rm -f go.mod go.sum
  go mod init parallels/etcd-harness >/dev/null 2>&1
  go mod edit -go=1.26.0
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
}
kwok_build() { GOBIN="$OUT" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"; }
# Without the version ldflags helm reports v3.21 and assumes Kubernetes 1.20 in template and lint.
helm_build() {
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" p
  for p in pkg/lint/rules pkg/chartutil; do
    ld="$ld -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  GOBIN="$OUT" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

[ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kubectl" ] || { step nice -n 10 bash -c "$(declare -f k8s_wrapper); $(declare -p ROOT K8S_VERSION); k8s_wrapper"; step nice -n 10 bash -c "$(declare -f k8s_build); $(declare -p ROOT K8S_VERSION OUT); k8s_build"; }
[ -x "$OUT/etcd" ] || step nice -n 10 bash -c "$(declare -f etcd_build); $(declare -p ROOT ETCD_VERSION OUT); etcd_build"
[ -x "$OUT/kwok" ] || step nice -n 10 bash -c "$(declare -f kwok_build); $(declare -p KWOK_VERSION OUT); kwok_build"
[ -x "$OUT/helm" ] || step nice -n 10 bash -c "$(declare -f helm_build); $(declare -p HELM_VERSION HELM_K8S_MINOR OUT); helm_build"
for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok; do
  printf '  %-24s %s\n' "$b" "$("$OUT/$b" --version 2>&1 | head -1)"
done
printf '  %-24s %s\n' kubectl "$("$OUT/kubectl" version --client 2>&1 | head -1)" helm "$("$OUT/helm" version --short)"
touch "$OUT/.complete"
echo "$OUT" >&3
