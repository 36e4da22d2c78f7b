#!/usr/bin/env bash
# The README walkthrough of a catalog entry, demand lists, evaluation and inspection, run against a live `dxl run`.
# Usage: DXL_HOME=... DXL_API_URL=http://127.0.0.1:8000 scripts/practice-walkthrough.sh (dxl on PATH); on a fresh
# ledger (it answers demand 1 and inspection 1) of `DXL_EVALUATION_PERIOD=86400 dxl run`, whose embedded node's
# clock it moves to the end of the evaluation period it delivers in (DXL_RPC_URL, default the local node).
set -euo pipefail
tok() { python3 -c "import json,sys;print(json.load(open('$DXL_HOME/secrets/demo-tokens.json'))['demo-$1']['token'])"; }
CIVIL=$(tok civil); HRSS=$(tok hrss); AUDITOR=$(tok auditor)
api() { local who=$1 method=$2 path=$3; shift 3; curl -s -X "$method" "$DXL_API_URL$path" -H "Authorization: Bearer $who" -H 'Content-Type: application/json' "$@"; }
cd "$(mktemp -d)"

# Due eight weeks after the node's time (the ledger takes a due date a week ahead at least; a node's clock
# moved ahead, as a test's may be, takes it from there), not a fixed day that would one day have passed.
NODE_NOW=$(curl -s -X POST "${DXL_RPC_URL:-http://127.0.0.1:8545}" -H 'Content-Type: application/json' \
  --data '{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", false]}' \
  | python3 -c "import json,sys;print(int(json.load(sys.stdin)['result']['timestamp'], 16))")
DUE=$(date -u -d "@$((NODE_NOW + 56 * 86400))" +%F)
echo '$ dxl demand publish --token $CIVIL --to HRSS --title 就业失业登记信息 ...'
dxl demand publish --token "$CIVIL" --to HRSS --title 就业失业登记信息 \
  --purpose 最低生活保障家庭经济状况核对 --legal-basis 《社会救助暂行办法》第十一条 \
  --field 公民身份号码 --field 就业状态 --field 登记日期 --due "$DUE"
echo
# HRSS catalogues a resource that meets it (a DCAT document, as any catalog entry).
cat > doc.json <<'JSON'
{"dct:title": "就业失业登记信息", "dct:description": "本市劳动者的就业与失业登记状态。",
 "csvw:column": [{"csvw:name": "person_id", "csvw:datatype": "string", "dct:description": "公民身份号码"},
                 {"csvw:name": "status", "csvw:datatype": "string", "dct:description": "就业状态"},
                 {"csvw:name": "registered_on", "csvw:datatype": "date", "dct:description": "登记日期"}],
 "dcat:mediaType": "text/csv", "dct:accrualPeriodicity": "daily",
 "dct:accessRights": "申请部门须提供社会救助核对授权书",
 "dcat:contactPoint": {"vcard:fn": "市人社局就业促进处"},
 "dcatap:applicableLegislation": "《就业服务与就业管理规定》"}
JSON
SCHEMA=0x$(printf '2%.0s' {1..64})
echo "\$ dxl catalog add --token \$HRSS --document doc.json --share-type conditional --schema-hash ${SCHEMA:0:6}…${SCHEMA: -4} --sensitivity 2"
ADDED=$(dxl catalog add --token "$HRSS" --document doc.json --share-type conditional --schema-hash "$SCHEMA" --sensitivity 2)
echo "$ADDED"
RESOURCE=$(sed -E 's/^catalogued resource ([0-9]+):.*/\1/' <<< "$ADDED")
echo "\$ dxl catalog show $RESOURCE --token \$CIVIL"
dxl catalog show "$RESOURCE" --token "$CIVIL"
echo
echo "\$ dxl demand answer 1 --token \$HRSS --new-resource $RESOURCE --note ..."
dxl demand answer 1 --token "$HRSS" --new-resource "$RESOURCE" --note 已编目，按有条件共享申请
echo
# CIVIL requests it, HRSS approves, both sign (custodied keys), HRSS grants and delivers a real payload.
NOW=$(date +%s)
REQ=$(api "$CIVIL" POST /requests --data "{\"resource_id\": $RESOURCE, \"purpose\": \"最低生活保障家庭经济状况核对\",
  \"scope_hash\": \"0x$(printf '3%.0s' {1..64})\", \"terms_hash\": \"0x$(printf '4%.0s' {1..64})\",
  \"valid_from\": $((NOW - 60)), \"valid_until\": $((NOW + 365 * 86400))}" | python3 -c "import json,sys;print(json.load(sys.stdin)['record']['id'])")
api "$HRSS" POST "/requests/$REQ/approve" > /dev/null
api "$CIVIL" POST "/requests/$REQ/signatures" --data '{}' > /dev/null
AGREEMENT=$(api "$HRSS" POST "/requests/$REQ/signatures" --data '{}' | python3 -c "import json,sys;print(json.load(sys.stdin)['agreement']['id'])")
GRANT=$(api "$HRSS" POST /grants --data "{\"agreement_id\": $AGREEMENT, \"expires_at\": $((NOW + 300 * 86400))}" | python3 -c "import json,sys;print(json.load(sys.stdin)['record']['id'])")
printf 'person_id,status,registered_on\n110101199001011234,unemployed,2026-11-02\n110101198805052345,employed,2026-10-15\n' > batch1.csv
printf 'person_id,status,registered_on\n110101197712123456,employed,2026-11-20\n' > batch2.csv
deliver() {
  dxl commit "$1" --provider-id 2 --agreement "$AGREEMENT" --grant "$GRANT" --provider HRSS --consumer CIVIL \
    --keystore "$DXL_HOME/keys/dept-hrss.json" --password-file "$DXL_HOME/secrets/keystore-passphrase" --json > "$1.commit.json"
  python3 - "$1" <<'PY' > "$1.body.json"
import json, sys
m = json.load(open(sys.argv[1] + ".manifest.json"))
print(json.dumps({"delivery_id": m["delivery_id"], "grant_id": m["grant_id"], "commitment": m["root"],
                  "byte_size": m["byte_size"], "record_count": m["record_count"]}))
PY
  api "$HRSS" POST /deliveries --data @"$1.body.json" | python3 -c "import json,sys;r=json.load(sys.stdin)['record'];print(r['delivery_id'], r['recorded_at'])"
}
# An inspection covers whole evaluation periods, over: the two deliveries are made in one, the last closed one
# (`--period last`) once the embedded node's clock is moved to its end (on a network it passes there by itself;
# DXL_EVALUATION_PERIOD=86400, the shortest, has it a day away at most, not 30). A period ending in less than
# ten minutes is skipped: the deliveries would straddle its end.
LENGTH=$(dxl evaluation period --token "$AUDITOR" --json | python3 -c "import json,sys;print(json.load(sys.stdin)['length_seconds'])")
rpc() { curl -s -X POST "${DXL_RPC_URL:-http://127.0.0.1:8545}" -H 'Content-Type: application/json' --data "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"$1\", \"params\": $2}"; }
NODE_NOW=$(rpc eth_getBlockByNumber '["latest", false]' | python3 -c "import json,sys;print(int(json.load(sys.stdin)['result']['timestamp'], 16))")
if (( LENGTH - NODE_NOW % LENGTH < 600 )); then
  rpc evm_setNextBlockTimestamp "[$(((NODE_NOW / LENGTH + 1) * LENGTH))]" > /dev/null; rpc evm_mine "[]" > /dev/null
fi
read -r D1 T1 < <(deliver batch1.csv)
read -r D2 T2 < <(deliver batch2.csv)

echo "\$ dxl evaluation add $AGREEMENT --token \$CIVIL --delivery $D1 --timeliness 5 --completeness 4 --accuracy 5 ..."
dxl evaluation add "$AGREEMENT" --token "$CIVIL" --delivery "$D1" --timeliness 5 --completeness 4 --accuracy 5 \
  --comment 字段齐全，次日送达
echo "\$ dxl evaluation add $AGREEMENT --token \$HRSS --delivery $D1 --purpose-compliance 5"
dxl evaluation add "$AGREEMENT" --token "$HRSS" --delivery "$D1" --purpose-compliance 5
echo

END=$(((T2 / LENGTH + 1) * LENGTH))
[ "$((T1 / LENGTH))" -eq "$((T2 / LENGTH))" ] || { echo "the deliveries straddle a period's end" >&2; exit 2; }
rpc evm_setNextBlockTimestamp "[$END]" > /dev/null; rpc evm_mine "[]" > /dev/null
# The seed block is 5 blocks after the head the service reads: the opening must be mined before it (a loaded
# machine may take a few of dxl run's one-second blocks), and the draw waits until it is mined.
echo "\$ dxl inspection open --token \$AUDITOR --period last --sample-size 1 --seed-delay 5"
dxl inspection open --token "$AUDITOR" --period last --sample-size 1 --seed-delay 5
echo '$ dxl inspection draw 1 --token $AUDITOR'
for _ in $(seq 30); do sleep 1; dxl inspection draw 1 --token "$AUDITOR" 2> draw.err && break; done
[ ! -s draw.err ] || { cat draw.err >&2; exit 2; }
echo '$ dxl inspection sample 1        # recomputed from the node alone (verifier/sampling.py)'
dxl inspection sample 1
SAMPLED=$(dxl inspection show 1 --token "$AUDITOR" --json | python3 -c "import json,sys;print(json.load(sys.stdin)['sample'][0]['delivery_id'])")
FILE=$([ "$SAMPLED" = "$D1" ] && echo batch1.csv || echo batch2.csv)
echo "\$ dxl inspection present 1 --token \$HRSS --payload $FILE --manifest $FILE.manifest.json"
dxl inspection present 1 --token "$HRSS" --payload "$FILE" --manifest "$FILE.manifest.json"
echo "\$ dxl inspection outcome 1 --token \$AUDITOR --delivery $SAMPLED"
dxl inspection outcome 1 --token "$AUDITOR" --delivery "$SAMPLED"
echo
api "$AUDITOR" POST /audit/index > /dev/null
echo '$ curl -s -H "Authorization: Bearer $AUDITOR" "$DXL_API_URL/audit/scorecard?department=HRSS" | jq -c .practice'
api "$AUDITOR" GET "/audit/scorecard?department=HRSS" | python3 -c "import json,sys;print(json.dumps(json.load(sys.stdin)['practice'], separators=(',', ':'), ensure_ascii=False))"
