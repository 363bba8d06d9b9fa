#!/usr/bin/env bash
# Offline checks of deploy/ and terraform/ (issue 9). Nothing here needs AWS, a Docker engine
# or a Kubernetes cluster; the AWS provider cannot be downloaded on these machines, so
# `terraform validate`/`plan` are left to users (docs/deploy-aws.md).
#
#   bash tests/deploy/run_checks.sh
#
# Installs its tools idempotently: promtool (Debian package prometheus) and, when no compose
# tool exists, Debian's docker-compose (apt, root only); pinned checkov in one virtualenv and
# pinned python-hcl2, kubernetes-validate, PyYAML and yamllint in another, both under
# $FLOE_DEPLOY_TOOLS (default ~/.cache/floe-deploy-checks; checkov pins its own HCL parser,
# which would clash with python-hcl2). terraform must be on PATH. About 6-10 s once installed.
# Runs every check even after a failure, prints a summary, exits 1 if any check failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${FLOE_DEPLOY_TOOLS:-$HOME/.cache/floe-deploy-checks}"
PYTHON="${PYTHON:-python3}"
K8S_VERSION="1.30.0"

CHECKOV_PINS="checkov==3.3.30"
PY_PINS="python-hcl2==8.1.4 kubernetes-validate==1.37.0 PyYAML==6.0.2 yamllint==1.38.0"

log() { printf '\n== %s\n' "$*"; }
die() { echo "run_checks: $*" >&2; exit 2; }

# --- tools ----------------------------------------------------------------------------------

venv() { # venv <dir> <pins...>: (re)creates the venv when its pins changed
  local dir="$1"; shift
  local want="$*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.pins" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "installing into $dir: $want"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir" || return 1
  "$dir/bin/pip" install --quiet --disable-pip-version-check $want || return 1
  echo "$want" > "$dir/.pins"
}

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  echo "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; }
}

command -v terraform >/dev/null || die "terraform is not on PATH"
command -v promtool >/dev/null || apt_install prometheus || die "promtool missing (apt-get install prometheus)"
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  apt_install docker-compose || echo "no compose tool; the compose check will be skipped"
fi
mkdir -p "$TOOLS"
venv "$TOOLS/checkov" $CHECKOV_PINS || die "could not install $CHECKOV_PINS"
venv "$TOOLS/py" $PY_PINS || die "could not install $PY_PINS"

# --- checks ---------------------------------------------------------------------------------

declare -a PASSED=() FAILED=() SKIPPED=()
check() { # check <name> <command...>
  local name="$1"; shift
  log "$name"
  local start=$SECONDS
  if "$@"; then
    PASSED+=("$name ($((SECONDS - start))s)")
  else
    FAILED+=("$name")
  fi
}

tf_fmt() {
  terraform fmt -check -recursive -diff "$ROOT/terraform" 2>&1 | grep -v -e 'CLI configuration' -e '^[│╷╵]' -e '^$'
  return "${PIPESTATUS[0]}"
}

# Renders the user-data template for every role with terraform's own templatefile() (no
# provider needed) and checks the result with bash -n.
tf_templates() {
  local dir rc=0
  dir="$(mktemp -d)"
  cat > "$dir/main.tf" <<HCL
locals {
  common = {
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/floe:0.1.0", region = "us-east-1",
    ecr_registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", kafka_port = 9092,
    env = { FLOE_ZONE = "us-east-1a", FLOE_LISTEN = "0.0.0.0:9092" },
  }
  roles = {
    agent     = { role = "agent", log_group = "/floe/t/agent", asg_name = "t-agent-us-east-1a", stop_timeout = 60, db_secret_arn = "", db_host = "", db_port = 0, db_name = "" }
    metadata  = { role = "metadata", log_group = "/floe/t/metadata", asg_name = "", stop_timeout = 30, db_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1", db_host = "db.example", db_port = 5432, db_name = "floe" }
    compactor = { role = "compactor", log_group = "/floe/t/compactor", asg_name = "", stop_timeout = 60, db_secret_arn = "", db_host = "", db_port = 0, db_name = "" }
  }
}
output "rendered" {
  value = { for k, v in local.roles : k => templatefile("$ROOT/terraform/modules/floe/templates/user_data.sh.tftpl", merge(local.common, v)) }
}
HCL
  (
    cd "$dir" || exit 1
    terraform init -input=false -no-color >/dev/null 2>&1 || { echo "terraform init failed"; exit 1; }
    terraform apply -auto-approve -input=false -no-color >/dev/null 2>"$dir/err" || { cat "$dir/err"; exit 1; }
    for role in agent metadata compactor; do
      terraform output -json rendered 2>/dev/null | "$TOOLS/py/bin/python" -c "import json,sys; print(json.load(sys.stdin)['$role'])" > "$role.sh" || exit 1
      bash -n "$role.sh" || { echo "user data of $role: syntax error"; exit 1; }
      echo "user data of $role: renders, bash -n ok ($(wc -l < "$role.sh") lines)"
    done
    grep -q 'FLOE_ZONE=us-east-1a' agent.sh && grep -q 'floe-drain-watch' agent.sh && ! grep -q 'floe-drain-watch' metadata.sh \
      && grep -q 'floe-database-env' metadata.sh || { echo "rendered user data lacks a role-specific part"; exit 1; }
  ) || rc=1
  rm -rf "$dir"
  return $rc
}

# The module's variable declarations alone need no provider: plan them with good inputs (must
# pass) and with each bad input (must be rejected by its validation).
tf_variables() {
  local dir rc=0
  dir="$(mktemp -d)"
  cp "$ROOT/terraform/modules/floe/variables.tf" "$dir/"
  cat > "$dir/good.tfvars" <<'TFVARS'
name                = "floe-prod"
vpc_id              = "vpc-0123456789abcdef0"
zones               = { "us-east-1a" = { subnet_id = "subnet-0a", route_table_id = "rtb-0a" }, "us-east-1b" = { subnet_id = "subnet-0b", route_table_id = "rtb-0b" } }
metadata_subnet_ids = ["subnet-0a", "subnet-0b"]
database_subnet_ids = ["subnet-0a", "subnet-0b"]
floe_image          = "123456789012.dkr.ecr.us-east-1.amazonaws.com/floe:0.1.0"
client_cidrs        = ["10.0.0.0/8"]
TFVARS
  (
    cd "$dir" || exit 1
    terraform init -input=false -no-color >/dev/null 2>&1 || exit 1
    terraform plan -input=false -no-color -var-file=good.tfvars >/dev/null 2>plan.err \
      || { echo "good inputs rejected:"; cat plan.err; exit 1; }
    echo "good inputs: accepted"
    bad=(
      'client_cidrs=["0.0.0.0/0"]'
      'floe_image=floe:latest'
      'zones={"east"={subnet_id="subnet-0a",route_table_id="rtb-0a"}}'
      'zones={"us-east-1a"={subnet_id="subnet-0a",route_table_id="subnet-0a"}}'
      'agent_env={FLOE_ZONE="us-east-1b"}'
      'metadata_subnet_ids=["subnet-0a"]'
      'object_prefix=/floe/'
      'name=Floe_Prod'
      'log_retention_days=10'
    )
    for b in "${bad[@]}"; do
      if terraform plan -input=false -no-color -var-file=good.tfvars -var "$b" >/dev/null 2>plan.err; then
        echo "bad input accepted: $b"; exit 1
      fi
      grep -q "Invalid value for variable" plan.err || { echo "$b failed for another reason:"; cat plan.err; exit 1; }
      echo "rejected by its validation: $b"
    done
  ) || rc=1
  rm -rf "$dir"
  return $rc
}

checkov_tf() {
  "$TOOLS/checkov/bin/checkov" -d "$ROOT/terraform" --framework terraform --skip-download --quiet --compact 2>&1 \
    | grep -v -e 'Failed to get the checkov mappings' -e 'NameResolutionError' -e 'MaxRetryError'
  return "${PIPESTATUS[0]}"
}

checkov_deploy() {
  "$TOOLS/checkov/bin/checkov" -d "$ROOT/deploy" --framework kubernetes dockerfile --skip-download --quiet --compact 2>&1 \
    | grep -v -e 'Failed to get the checkov mappings' -e 'NameResolutionError' -e 'MaxRetryError'
  return "${PIPESTATUS[0]}"
}

promtool_checks() {
  local p="$ROOT/deploy/prometheus"
  promtool check config "$p/prometheus.yml" \
    && promtool check config "$p/prometheus-ec2.yml" \
    && promtool check rules "$p/alerts.yml" \
    && (cd "$p" && promtool test rules alerts_test.yml)
}

compose_config() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p floe -f "$ROOT/deploy/compose.yaml" config -q && echo "docker compose config: ok"
  elif command -v docker-compose >/dev/null; then
    docker-compose -p floe -f "$ROOT/deploy/compose.yaml" config -q && echo "docker-compose $(docker-compose version --short) config: ok"
  else
    return 3
  fi
}

k8s_validate() {
  local files=()
  for f in "$ROOT"/deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f")
  done
  "$TOOLS/py/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${files[@]}" \
    && echo "kubernetes-validate --strict (Kubernetes $K8S_VERSION): ${#files[@]} files ok"
}

# The agent manifests compute a unique node id with /bin/sh; run that snippet with dash.
k8s_node_id_snippet() {
  local f="$ROOT/deploy/k8s/agent-us-east-1a.yaml" out
  out="$("$TOOLS/py/bin/python" - "$f" <<'PY' | POD_IP=10.244.3.7 sh
import sys, yaml
d = next(yaml.safe_load_all(open(sys.argv[1])))
script = d["spec"]["template"]["spec"]["containers"][0]["args"][0]
print(script.replace("exec /usr/local/bin/floe agent", 'echo "$FLOE_NODE_ID $FLOE_ADVERTISE"'))
PY
)"
  [ "$out" = "15991559 10.244.3.7:9092" ] && echo "node id snippet: $out" || { echo "node id snippet printed: $out"; return 1; }
}

python_tests() {
  (cd "$ROOT/tests/deploy" && PATH="$PATH" "$TOOLS/py/bin/python" -m unittest -v test_terraform_wiring test_metric_names test_deploy_files 2>&1 | tail -n 4
   exit "${PIPESTATUS[0]}")
}

grafana_json() {
  "$TOOLS/py/bin/python" - "$ROOT/deploy/grafana/floe-dashboard.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
assert d["uid"] and d["title"], "uid and title"
for p in d["panels"]:
    if p["type"] != "row":
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
print(f"dashboard: {len(ids)} panels, ids unique")
PY
}

check "terraform fmt -check -recursive" tf_fmt
check "terraform user-data templates render (bash -n)" tf_templates
check "terraform variable validations" tf_variables
check "checkov terraform" checkov_tf
check "checkov kubernetes + dockerfile" checkov_deploy
check "promtool check config/rules, test rules" promtool_checks
log "compose config"
compose_config; rc=$?
if [ $rc -eq 0 ]; then PASSED+=("compose config"); elif [ $rc -eq 3 ]; then SKIPPED+=("compose config (no docker compose / docker-compose)"); else FAILED+=("compose config"); fi
check "yamllint deploy/" "$TOOLS/py/bin/yamllint" -s -c "$ROOT/deploy/.yamllint.yaml" "$ROOT/deploy"
check "kubernetes-validate --strict" k8s_validate
check "k8s node-id snippet (sh)" k8s_node_id_snippet
check "grafana dashboard JSON" grafana_json
check "python: terraform wiring, metric names, deploy files" python_tests

log "summary ($SECONDS s)"
for c in "${PASSED[@]}"; do echo "  ok      $c"; done
for c in "${SKIPPED[@]}"; do echo "  SKIPPED $c"; done
for c in "${FAILED[@]}"; do echo "  FAILED  $c"; done
[ ${#FAILED[@]} -eq 0 ]
