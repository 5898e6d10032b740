#!/usr/bin/env bash
# Photo search at a million photos: starts `agora up` on a throwaway state dir, loads
# PHOTOS photo rows (default 1,000,000) straight into the photos database — 90% public,
# 1 to 4 tags each drawn log-uniformly from 10,000 tags (a few tags are on many photos,
# most on few), every 100th photo the caller's own — then times the real HTTP endpoints
# (through the gateway, with a token) and prints p50/p95/max per query shape.
#
#   hack/photos-scale.sh [path/to/agora]    # default target/release/agora
#
# A measurement, not a test: the figures are in docs/photos-search.md. Only the rows are
# synthetic (all share one stored blob); the queries are the service's own.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

BIN=${1:-target/release/agora}
PHOTOS=${PHOTOS:-1000000}
RUNS=${RUNS:-30}
[ -x "$BIN" ] || { echo "error: build it first: cargo build --release --bin agora" >&2; exit 2; }

WORK=$(mktemp -d /tmp/agora-photos-scale.XXXXXX)
chmod 755 "$WORK" # PostgreSQL runs as postgres under root
PORT=$(free_port)
"$BIN" up --listen "127.0.0.1:$PORT" --state-dir "$WORK/state" --rate-limit-per-minute 0 \
  >"$WORK/agora.log" 2>&1 &
AGORA_PID=$!
trap 'kill "$AGORA_PID" 2>/dev/null; wait "$AGORA_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  curl -sf "$BASE/api/v1/openapi.json" >/dev/null 2>&1 && break
  kill -0 "$AGORA_PID" 2>/dev/null || { cat "$WORK/agora.log" >&2; exit 1; }
  sleep 1
done

session=$(curl -sS -f "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"username":"scale","email":"scale@example.org","password":"scale-password"}')
TOKEN=$(python3 -c "import json, sys; print(json.load(sys.stdin)['access_token'])" <<<"$session")
ME=$(python3 -c "import json, sys; print(json.load(sys.stdin)['user']['id'])" <<<"$session")

PG_PORT=$(grep -o '"port":[0-9]*' "$WORK/agora.log" | head -1 | cut -d: -f2)
export PGPASSWORD
PGPASSWORD=$(cat "$WORK/state/postgres/superuser-password")
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d agora_photos "$@"; }

echo "loading $PHOTOS photos..." >&2
start=$(date +%s)
psql <<SQL
ALTER TABLE photos DISABLE TRIGGER photos_index_tags;
INSERT INTO blobs (sha256, content_type, size_bytes, width, height, thumbnail_bytes, refs)
VALUES (repeat('a', 64), 'image/jpeg', 100000, 1024, 768, 9000, $PHOTOS);
-- UUIDv7-shaped ids in upload order; owners: the caller for every 100th, else 1 of 10,000.
INSERT INTO photos (id, owner_id, sha256, visibility, tags, created_at)
SELECT overlay(overlay(md5(i::text) PLACING lpad(to_hex(1700000000000 + i), 12, '0') FROM 1 FOR 12)
               PLACING '7' FROM 13 FOR 1)::uuid,
       CASE WHEN i % 100 = 0 THEN '$ME'::uuid
            ELSE md5('owner' || (i % 10000))::uuid END,
       repeat('a', 64),
       CASE WHEN random() < 0.9 THEN 'public' ELSE 'private' END,
       ARRAY(SELECT DISTINCT 't' || floor(power(10000, random()))::int
             FROM generate_series(1, 1 + i % 4)),
       now()
FROM generate_series(1, $PHOTOS) AS i;
-- What the trigger maintains, set-based.
INSERT INTO photo_tags (tag, photo_id)
SELECT DISTINCT t, id FROM photos, unnest(tags) AS t WHERE visibility = 'public';
INSERT INTO tag_counts (tag, public_photos) SELECT tag, count(*) FROM photo_tags GROUP BY tag;
ALTER TABLE photos ENABLE TRIGGER photos_index_tags;
VACUUM ANALYZE;
SQL
echo "loaded in $(( $(date +%s) - start ))s" >&2
psql -t -A <<'SQL' >&2
SELECT 'public photos: ' || count(*) FROM photos WHERE visibility = 'public';
SELECT 'tags: ' || count(*) || ', most used: ' || max(public_photos) FROM tag_counts;
SELECT 'on t1: ' || (SELECT public_photos FROM tag_counts WHERE tag = 't1')
    || ', t2: ' || (SELECT public_photos FROM tag_counts WHERE tag = 't2')
    || ', t50: ' || (SELECT public_photos FROM tag_counts WHERE tag = 't50')
    || ', t5000: ' || (SELECT public_photos FROM tag_counts WHERE tag = 't5000');
SELECT 't1 and t2: ' || count(*) FROM photos WHERE visibility = 'public' AND tags @> '{t1,t2}';
SQL

# Times one path RUNS times (after one warm-up call): p50, p95, max in ms.
measure() {
  local label=$1 path=$2
  curl -sS -f -o /dev/null "$BASE$path" -H "authorization: Bearer $TOKEN"
  for _ in $(seq 1 "$RUNS"); do
    curl -sS -f -o /dev/null -w '%{time_total}\n' "$BASE$path" -H "authorization: Bearer $TOKEN"
  done | sort -n | awk -v label="$label" '{ t[NR] = $1 * 1000 } END {
    printf "| %s | %.1f | %.1f | %.1f |\n", label, t[int((NR + 1) / 2)], t[int(NR * 0.95 + 0.5)], t[NR] }'
}
cursor=$(curl -sS -f "$BASE/api/v1/photos?tag=t1&limit=20" -H "authorization: Bearer $TOKEN" |
  python3 -c "import json, sys; print(json.load(sys.stdin)['next_cursor'])")

echo "| query (limit 20) | p50 ms | p95 ms | max ms |"
echo "|---|---|---|---|"
measure "tag=t1 (most common tag)" "/api/v1/photos?tag=t1&limit=20"
measure "tag=t1, second page" "/api/v1/photos?tag=t1&limit=20&cursor=$cursor"
measure "tag=t50 (mid)" "/api/v1/photos?tag=t50&limit=20"
measure "tag=t5000 (rare)" "/api/v1/photos?tag=t5000&limit=20"
measure "tag=t1&tag=t2 (two common tags)" "/api/v1/photos?tag=t1&tag=t2&limit=20"
measure "tag=t1&tag=t5000 (common and rare)" "/api/v1/photos?tag=t1&tag=t5000&limit=20"
measure "tag=t2&tag=t3&tag=t4 (three common, rarely together)" "/api/v1/photos?tag=t2&tag=t3&tag=t4&limit=20"
measure "owner=me (10,000 photos)" "/api/v1/photos?owner=me&limit=20"
measure "tags?prefix= (all tags)" "/api/v1/photos/tags?prefix="
measure "tags?prefix=t1" "/api/v1/photos/tags?prefix=t1"
measure "tags?prefix=t99" "/api/v1/photos/tags?prefix=t99"
