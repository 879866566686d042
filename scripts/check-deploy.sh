#!/usr/bin/env bash
# Checks the shipped deployment configuration in deploy/:
#   - promtool check config   deploy/prometheus/prometheus.yml (and the rule files it loads)
#   - promtool check rules    deploy/prometheus/rules/*.yml
#   - promtool test rules     deploy/prometheus/tests/*.yml
#   - amtool check-config     deploy/alertmanager/alertmanager.yml, and its routing
#                             (only when amtool is installed: prometheus-alertmanager)
#   - the Grafana dashboard parses, and every metric named in a dashboard query or a
#     rule expression is in docs/metrics.md (histograms: also _bucket/_sum/_count), a
#     recording rule defined in deploy/, or `up`.
# Run from anywhere; it works from the repository root. Needs promtool (Debian package
# prometheus) and python3 (standard library only). Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
  echo "check-deploy: FAILED: $*" >&2
  exit 1
}

command -v promtool >/dev/null 2>&1 ||
  fail "promtool not found (apt-get install prometheus)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found"

prom_config=deploy/prometheus/prometheus.yml
rule_files=(deploy/prometheus/rules/*.yml)
test_files=(deploy/prometheus/tests/*.yml)
am_config=deploy/alertmanager/alertmanager.yml
dashboard=deploy/grafana/resonance-dashboard.json
for f in "$prom_config" "${rule_files[@]}" "${test_files[@]}" "$am_config" "$dashboard" docs/metrics.md; do
  [ -f "$f" ] || fail "missing file $f"
done

echo "== promtool check config $prom_config"
promtool check config "$prom_config" || fail "promtool check config $prom_config"

echo "== promtool check rules ${rule_files[*]}"
promtool check rules "${rule_files[@]}" || fail "promtool check rules"

echo "== metric names in rules and dashboard against docs/metrics.md"
metrics_summary=$(python3 - docs/metrics.md "$dashboard" "${rule_files[@]}" <<'PY'
import json
import re
import sys

metrics_md, dashboard_path, rule_paths = sys.argv[1], sys.argv[2], sys.argv[3:]
errors = []

# --- documented metrics: table rows "| `name` | type | labels | meaning |"
allowed = {"up"}
documented = 0
with open(metrics_md, encoding="utf-8") as f:
    for line in f:
        m = re.match(r"\|\s*`(resonance_[a-zA-Z0-9_]+)`\s*\|\s*(\w+)\s*\|", line)
        if not m:
            continue
        name, kind = m.groups()
        documented += 1
        allowed.add(name)
        if kind == "histogram":
            allowed.update(name + s for s in ("_bucket", "_sum", "_count"))
if documented == 0:
    errors.append(f"{metrics_md}: no metric table rows found")


# --- expressions in rule files (a small reader for the YAML shapes used there:
#     `expr: <plain or quoted scalar>` or `expr: |` / `expr: >` block scalars)
def rule_exprs(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    exprs, records, alerts = [], [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)(?:-\s+)?(record|alert):\s*(\S+)\s*$", line)
        if m:
            (records if m.group(2) == "record" else alerts).append(m.group(3).strip("'\""))
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$", line)
        if m:
            indent, value = len(m.group(1)), m.group(2)
            if re.fullmatch(r"[|>][-+]?", value):
                body = []
                i += 1
                while i < len(lines) and (
                    not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
                ):
                    body.append(lines[i].strip())
                    i += 1
                exprs.append((i, " ".join(body).strip()))
                continue
            if value[:1] == "'" and value[-1:] == "'":
                value = value[1:-1].replace("''", "'")
            elif value[:1] == '"' and value[-1:] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            exprs.append((i + 1, value))
        i += 1
    return exprs, records, alerts


checked = []  # (where, expr)
recorded = set()
n_alerts = 0
for path in rule_paths:
    exprs, records, alerts = rule_exprs(path)
    if len(exprs) != len(records) + len(alerts):
        errors.append(
            f"{path}: found {len(exprs)} expr for {len(records)} record + "
            f"{len(alerts)} alert rules; the reader in check-deploy.sh needs updating"
        )
    recorded.update(records)
    n_alerts += len(alerts)
    checked += [(f"{path}:{line}", e) for line, e in exprs]
allowed |= recorded

# --- dashboard: every "expr" in panels (nested too) and the template variable queries
try:
    with open(dashboard_path, encoding="utf-8") as f:
        dash = json.load(f)
except (OSError, ValueError) as e:
    print(f"{dashboard_path}: does not parse as JSON: {e}", file=sys.stderr)
    sys.exit(1)

n_panels = 0


def walk(node, where):
    global n_panels
    if isinstance(node, dict):
        if node.get("type") not in (None, "row") and "gridPos" in node:
            n_panels += 1
            for t in node.get("targets", []):
                uid = (t.get("datasource") or node.get("datasource") or {}).get("uid")
                if uid != "${DS_PROMETHEUS}":
                    errors.append(
                        f"{dashboard_path}: panel {node.get('title')!r} uses datasource "
                        f"uid {uid!r}, not ${{DS_PROMETHEUS}}"
                    )
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                checked.append((f"{dashboard_path}: {where}", v))
            else:
                walk(v, node.get("title", where) if k == "targets" else where)
    elif isinstance(node, list):
        for v in node:
            walk(v, where)


walk(dash.get("panels", []), "panel")
for var in dash.get("templating", {}).get("list", []):
    if var.get("type") == "query":
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        checked.append((f"{dashboard_path}: variable {var.get('name')}", q))
if n_panels == 0:
    errors.append(f"{dashboard_path}: no panels")
if not isinstance(dash.get("schemaVersion"), int):
    errors.append(f"{dashboard_path}: no schemaVersion")

# --- metric names in PromQL (and Grafana's label_values()) without a full parser
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    if "__name__" in expr:
        return None
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)  # strings
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\blabel_values\s*\(\s*([^,()]*?)\s*,\s*\w+\s*\)", r"(\1)", s)
    s = re.sub(r"\blabel_values\s*\(\s*\w+\s*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        word = m.group(0)
        if re.match(r"\s*\(", s[m.end():]) or word.lower() in KEYWORDS:
            continue  # function, aggregation or keyword
        names.add(word)
    return names


n_refs = set()
for where, expr in checked:
    names = metric_names(expr)
    if names is None:
        errors.append(f"{where}: selects by __name__, cannot check: {expr}")
        continue
    for name in sorted(names - allowed):
        errors.append(f"{where}: metric {name} is not in {metrics_md} nor a recording rule: {expr}")
    n_refs |= names

if errors:
    for e in errors:
        print(e, file=sys.stderr)
    sys.exit(1)
print(f"{len(checked)} expressions ({len(n_refs)} distinct metrics) use only documented "
      f"metrics; {n_alerts} alerts, {len(recorded)} recording rules; dashboard: {n_panels} panels")
PY
) || fail "dashboard and metric names (see above)"
echo "  $metrics_summary"

echo "== promtool test rules ${test_files[*]}"
promtool test rules "${test_files[@]}" || fail "promtool test rules (a rule does not do what its test expects)"

if command -v amtool >/dev/null 2>&1; then
  am_summary="alertmanager config valid"
  echo "== amtool check-config $am_config"
  amtool check-config "$am_config" || fail "amtool check-config $am_config"
  echo "== amtool config routes test $am_config"
  # severity decides the receiver; an alert without one goes to the default (warning).
  for route in "resonance-critical severity=critical" "resonance-warning severity=warning" \
    "resonance-warning alertname=Unlabelled"; do
    read -r receiver labels <<<"$route"
    # shellcheck disable=SC2086 # labels is a list of label=value words
    amtool config routes test --config.file="$am_config" --verify.receivers="$receiver" \
      $labels 2>/dev/null >/dev/null ||
      fail "alertmanager routes: {$labels} should go to $receiver"
    echo "  {$labels} -> $receiver"
  done
else
  am_summary="amtool not installed, alertmanager config not checked"
  echo "== amtool not found: skipping $am_config (apt-get install prometheus-alertmanager)"
fi


echo "check-deploy: OK: prometheus config and rules valid, ${#test_files[@]} rule test files passed, $am_summary, $metrics_summary"
