#!/usr/bin/env bash
# Contract fuzzing (CI step): checks that the running platform behaves as its own OpenAPI
# document says, with Schemathesis (https://schemathesis.readthedocs.io).
#
#   hack/schemathesis.sh [path/to/agora]        # default: target/debug/agora (build it first)
#
# - Installs a pinned Schemathesis into a cached virtualenv
#   (${XDG_CACHE_HOME:-~/.cache}/agora/schemathesis-venv-<version>).
# - Starts `agora up` on a free loopback port with a throwaway state dir (its own PostgreSQL
#   cluster) and the gateway rate limit off; stops it and removes everything on exit.
# - Registers two users and fuzzes every operation of GET /api/v1/openapi.json with the
#   first one's bearer token, running every check (status codes, media types, response
#   schemas, negative/positive data, undeclared methods, Allow headers, ignored auth, ...).
# - A small hooks file gives positive examples what a schema cannot describe: a live
#   refresh token for /auth/refresh and /auth/logout; the second user's id and posts in
#   place of generated ids (cross-user paths: following, friend requests, blocks, reading
#   and editing someone else's post or event) and never the caller's own id where acting on
#   oneself is a documented 400; no made-up cursor (cursors are opaque positions), no
#   made-up comment parent or photo id (references the fuzzer cannot create).
# - The notification stream is left out: its response never ends (server-sent events),
#   and Schemathesis reads whole bodies. services/agora/tests/notifications.rs checks it
#   (media type, 400/401/429 problems, tickets, replay).
# Exits with Schemathesis's status: non-zero on any finding.
#
# Output is not sanitized (the token and passwords belong to a throwaway instance) so that
# the printed curl reproductions work as they are.
# Knobs (environment): SCHEMATHESIS_MAX_EXAMPLES (per operation and phase, default 100),
# SCHEMATHESIS_SEED (default 1), SCHEMATHESIS_WORKERS (default 1: with 2, Hypothesis parses lambda sources from two threads and
# CPython 3.11's ast module fails with "AST constructor recursion depth mismatch"), SCHEMATHESIS_REPORT_DIR
# (if set: JUnit + NDJSON reports there), SCHEMATHESIS_EXTRA_ARGS (appended verbatim).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

BIN=${1:-target/debug/agora}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
REPORT_DIR=${SCHEMATHESIS_REPORT_DIR:-}
case "$REPORT_DIR" in /* | "") ;; *) REPORT_DIR="$PWD/$REPORT_DIR" ;; esac
cd "$(dirname "$0")/.."
source hack/lib.sh
if [ ! -x "$BIN" ]; then
  echo "error: $BIN is not an executable agora binary (run \`cargo build --bin agora\` first)" >&2
  exit 2
fi
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing curl and python3 (Debian packages)..." >&2
    apt_install curl python3 python3-venv >/dev/null
  else
    echo "error: curl and python3 are required (Debian packages curl, python3, python3-venv)" >&2
    exit 2
  fi
fi

# --- Schemathesis in a cached virtualenv ------------------------------------------------
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/agora/schemathesis-venv-$SCHEMATHESIS_VERSION"
if [ ! -f "$VENV/.installed" ]; then
  # Debian splits venv/ensurepip into python3-venv.
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing python3-venv (Debian package)..." >&2
      apt_install python3-venv >/dev/null
    else
      echo "error: \`python3 -m venv\` is unavailable; install the 'python3-venv' package" >&2
      exit 2
    fi
  fi
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV..." >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
  touch "$VENV/.installed"
fi

# --- agora up on a throwaway state dir ----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agora-schemathesis.XXXXXX")
# As root, agora runs PostgreSQL as `postgres`, which must be able to reach <state>/postgres.
chmod 755 "$WORK"
mkdir -m 755 "$WORK/state"
AGORA_PID=
cleanup() {
  local status=$?
  if [ -n "$AGORA_PID" ] && kill -0 "$AGORA_PID" 2>/dev/null; then
    kill -TERM "$AGORA_PID" 2>/dev/null || true # agora stops its PostgreSQL on SIGTERM
    for _ in $(seq 1 60); do kill -0 "$AGORA_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$AGORA_PID" 2>/dev/null; then
      kill -KILL "$AGORA_PID" 2>/dev/null || true
      # An orphaned postmaster would keep the state dir busy: stop it.
      if [ -f "$WORK/state/postgres/data/postmaster.pid" ]; then
        kill -QUIT "$(head -n 1 "$WORK/state/postgres/data/postmaster.pid")" 2>/dev/null || true
        sleep 1
      fi
    fi
    wait "$AGORA_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"

RUST_LOG="${RUST_LOG:-warn}" "$BIN" up --listen "127.0.0.1:$PORT" --state-dir "$WORK/state" \
  --rate-limit-per-minute 0 >"$WORK/agora.log" 2>&1 &
AGORA_PID=$!

echo "waiting for agora on $BASE..." >&2
deadline=$((SECONDS + 120))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/v1/openapi.json" || true)" = 200 ]; do
  if ! kill -0 "$AGORA_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: agora did not serve $BASE/api/v1/openapi.json; its log:" >&2
    cat "$WORK/agora.log" >&2
    exit 1
  fi
  sleep 1
done

# --- a user and its tokens -----------------------------------------------------------------
FUZZ_USER="fuzz_$(date +%s)_$RANDOM"
FUZZ_PASSWORD="fuzz-password-$RANDOM$RANDOM"
REGISTER=$(curl -sS -w '\n%{http_code}' "$BASE/api/v1/auth/register" \
  -H 'content-type: application/json' \
  -d "{\"username\":\"$FUZZ_USER\",\"email\":\"$FUZZ_USER@example.org\",\"password\":\"$FUZZ_PASSWORD\"}")
if [ "$(tail -n 1 <<<"$REGISTER")" != 201 ]; then
  echo "error: registering the fuzzing user failed:" >&2
  echo "$REGISTER" >&2
  exit 1
fi
token() { sed '$d' <<<"$REGISTER" | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
ACCESS_TOKEN=$(token access_token)
REFRESH_TOKEN=$(token refresh_token)
SELF_ID=$(sed '$d' <<<"$REGISTER" | python3 -c "import json, sys; print(json.load(sys.stdin)['user']['id'])")

# The second user, with a public and a friends-only post the first one may meet.
OTHER=$(curl -sS -f "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"username\":\"${FUZZ_USER}_b\",\"email\":\"${FUZZ_USER}_b@example.org\",\"password\":\"$FUZZ_PASSWORD\"}")
OTHER_ID=$(python3 -c "import json, sys; print(json.load(sys.stdin)['user']['id'])" <<<"$OTHER")
OTHER_TOKEN=$(python3 -c "import json, sys; print(json.load(sys.stdin)['access_token'])" <<<"$OTHER")
OTHER_POSTS=
for visibility in public friends; do
  post=$(curl -sS -f "$BASE/api/v1/posts" -H 'content-type: application/json' \
    -H "Authorization: Bearer $OTHER_TOKEN" -d "{\"text\":\"a $visibility post\",\"visibility\":\"$visibility\"}")
  OTHER_POSTS="$OTHER_POSTS${OTHER_POSTS:+,}$(python3 -c "import json, sys; print(json.load(sys.stdin)['id'])" <<<"$post")"
done
# ... and a friend request to the first one, for accept/decline to find.
INCOMING=$(curl -sS -f "$BASE/api/v1/relations/friend-requests" -H 'content-type: application/json' \
  -H "Authorization: Bearer $OTHER_TOKEN" -d "{\"to\":\"$SELF_ID\"}")
INCOMING_ID=$(python3 -c "import json, sys; print(json.load(sys.stdin)['id'])" <<<"$INCOMING")

# ... and events of the second user: a public one and a friends-only one (invisible).
OTHER_EVENTS=
for visibility in public friends; do
  event=$(curl -sS -f "$BASE/api/v1/events" -H 'content-type: application/json' \
    -H "Authorization: Bearer $OTHER_TOKEN" \
    -d "{\"title\":\"a $visibility event\",\"starts_at\":\"2099-01-01T10:00:00Z\",\"visibility\":\"$visibility\"}")
  OTHER_EVENTS="$OTHER_EVENTS${OTHER_EVENTS:+,}$(python3 -c "import json, sys; print(json.load(sys.stdin)['id'])" <<<"$event")"
done

# Photos to meet: one of the fuzzing user's own, and a public and a private one of the
# second user (a tiny PNG written by Python's zlib: no imaging library needed).
python3 - "$WORK/tiny.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\0" + b"".join(bytes([x * 60, y * 60, 128]) for x in range(4)) for y in range(4))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
photo_id() { python3 -c "import json, sys; print(json.load(sys.stdin)['id'])"; }
OWN_PHOTO=$(curl -sS -f "$BASE/api/v1/photos" -H "Authorization: Bearer $ACCESS_TOKEN" \
  -F "file=@$WORK/tiny.png" -F visibility=private -F tags=fuzz | photo_id)
# A public one of the fuzzing user's own, for posts: usable on a post of any visibility
# whatever the fuzzer does meanwhile (it may block the second user, whose photos a block
# hides).
OWN_PUBLIC_PHOTO=$(curl -sS -f "$BASE/api/v1/photos" -H "Authorization: Bearer $ACCESS_TOKEN" \
  -F "file=@$WORK/tiny.png" -F visibility=public -F tags=fuzz | photo_id)
OTHER_PHOTOS=
for visibility in public private; do
  OTHER_PHOTOS="$OTHER_PHOTOS${OTHER_PHOTOS:+,}$(curl -sS -f "$BASE/api/v1/photos" \
    -H "Authorization: Bearer $OTHER_TOKEN" -F "file=@$WORK/tiny.png" -F "visibility=$visibility" \
    -F tags=fuzz,sample | photo_id)"
done

# Positive examples of refresh/logout get a live refresh token of the fuzzing user: each
# successful refresh hands on its successor; after a logout (or a failed refresh) the next
# one comes from a login. Negative examples are left alone.
cat >"$WORK/hooks.py" <<'EOF'
import datetime
import os
import threading

import requests
import schemathesis

BASE = os.environ["AGORA_FUZZ_BASE"]
CREDENTIALS = {"login": os.environ["AGORA_FUZZ_LOGIN"], "password": os.environ["AGORA_FUZZ_PASSWORD"]}
LOCK = threading.Lock()
STATE = {"refresh_token": os.environ.get("AGORA_FUZZ_REFRESH_TOKEN")}
ENDPOINTS = ("/auth/refresh", "/auth/logout")


def _target(case):
    return case.operation.method.upper() == "POST" and case.operation.path.endswith(ENDPOINTS)


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _target(case):
        return
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return
    if not isinstance(case.body, dict) or not isinstance(case.body.get("refresh_token"), str):
        return
    with LOCK:
        token = STATE["refresh_token"]
        STATE["refresh_token"] = None  # consumed by this call
        if token is None:
            answer = requests.post(f"{BASE}/api/v1/auth/login", json=CREDENTIALS, timeout=60)
            if answer.status_code != 200:
                return
            token = answer.json()["refresh_token"]
    case.body = {**case.body, "refresh_token": token}


SELF_ID = os.environ["AGORA_FUZZ_SELF_ID"]
OTHER_ID = os.environ["AGORA_FUZZ_OTHER_ID"]
OTHER_POSTS = os.environ["AGORA_FUZZ_OTHER_POSTS"].split(",")
OTHER_EVENTS = os.environ["AGORA_FUZZ_OTHER_EVENTS"].split(",")
INCOMING_ID = os.environ["AGORA_FUZZ_INCOMING_REQUEST"]
PHOTOS = [os.environ["AGORA_FUZZ_OWN_PHOTO"], *os.environ["AGORA_FUZZ_OTHER_PHOTOS"].split(",")]
OWN_PUBLIC_PHOTO = os.environ["AGORA_FUZZ_OWN_PUBLIC_PHOTO"]
ACCESS_TOKEN = os.environ["AGORA_FUZZ_ACCESS_TOKEN"]
TURN = {"n": 0}


def _positive(case):
    meta = getattr(case, "meta", None)
    return meta is None or not meta.generation.mode.is_negative


def _stateful(case):
    meta = getattr(case, "meta", None)
    return meta is not None and str(meta.phase.name) == "stateful"


with open(os.environ["AGORA_FUZZ_PNG"], "rb") as f:
    PNG = f.read()


def _fresh_public_photo():
    """A public photo of the fuzzing user's that exists now: the stateful phase may
    delete the one made at the start (and may block the second user, whose photos a
    block hides), so each such post gets one uploaded for it."""
    answer = requests.post(
        f"{BASE}/api/v1/photos",
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        files={"file": ("p.png", PNG, "image/png")},
        data={"visibility": "public"},
        timeout=60,
    )
    return answer.json()["id"] if answer.status_code == 201 else OWN_PUBLIC_PHOTO


def _instant(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def _before(start, end):
    """Whether instant `end` follows `start` (the default start is now)."""
    end = _instant(end)
    start = _instant(start) if start is not None else datetime.datetime.now(datetime.timezone.utc)
    return end is not None and start is not None and start.tzinfo is not None \
        and end.tzinfo is not None and end > start


def _pick(choices, generated):
    """Cycle through real ids and the generated one (deterministic per run)."""
    with LOCK:
        TURN["n"] += 1
        n = TURN["n"]
    options = [*choices, generated]
    return options[n % len(options)]


@schemathesis.hook
def map_case(context, case):
    if not _positive(case):
        return case
    path = case.operation.path
    if path == "/api/v1/photos" and case.operation.method.upper() == "POST" and isinstance(case.body, dict):
        # "Any bytes" is schema-valid for a binary field; only images are (415 otherwise).
        case.body["file"] = PNG
    params = case.path_parameters
    # Stateful sequences link a created resource to the next call: keep their ids
    # (but acting on oneself is still a documented 400).
    if params and _stateful(case):
        for name, value in list(params.items()):
            if value == SELF_ID and name == "user_id":
                params[name] = OTHER_ID
    elif params:
        for name, value in list(params.items()):
            if not isinstance(value, str):
                continue
            if path.startswith("/api/v1/photos/{id}") and name == "id":
                params[name] = _pick(PHOTOS, value)
            elif path.startswith("/api/v1/posts/{id}") and name == "id":
                params[name] = _pick(OTHER_POSTS, value)
            elif path.startswith("/api/v1/events/{id}") and name == "id":
                params[name] = _pick(OTHER_EVENTS, value)
            elif path.startswith("/api/v1/relations/friend-requests/{id}"):
                params[name] = _pick([INCOMING_ID], value)
            elif name in ("user_id", "id") and (path.startswith("/api/v1/relations/") or path.startswith("/api/v1/users/{id}")):
                params[name] = _pick([OTHER_ID], value)
            if params[name] == SELF_ID and name == "user_id":
                params[name] = OTHER_ID  # acting on oneself is a documented 400
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
        if path == "/api/v1/events" and not _before(case.query.get("from"), case.query.get("to")):
            case.query.pop("to", None)  # `to` after `from` (default now): beyond a schema
    if isinstance(case.body, dict):
        if path == "/api/v1/relations/friend-requests" and isinstance(case.body.get("to"), str):
            to = _pick([OTHER_ID], case.body["to"])
            case.body["to"] = OTHER_ID if to == SELF_ID else to
        if path == "/api/v1/posts" and isinstance(case.body.get("photo_ids"), list):
            # A usable photo that exists now (made-up ids are a documented 400).
            case.body["photo_ids"] = [_fresh_public_photo()][: len(case.body["photo_ids"])]
        if path.endswith("/comments"):
            case.body.pop("parent_id", None)
        if path.startswith("/api/v1/events") and "starts_at" in case.body:
            # `ends_at` after `starts_at` is beyond a schema: keep it only when it is;
            # otherwise clear it (a PATCH's new start could pass the stored end).
            if not _before(case.body["starts_at"], case.body.get("ends_at")):
                case.body["ends_at"] = None
        elif path.startswith("/api/v1/events/{id}") and "ends_at" in case.body:
            case.body.pop("ends_at")  # the stored start is unknown here
    return case


@schemathesis.hook
def after_call(context, case, response):
    if _target(case) and case.operation.path.endswith("/auth/refresh") and response.status_code == 200:
        try:
            token = response.json()["refresh_token"]
        except Exception:
            return
        with LOCK:
            STATE["refresh_token"] = token
EOF

# --- the fuzzing run -------------------------------------------------------------------------
# No state kept between runs (Schemathesis would otherwise write .schemathesis/ into the
# working directory); an explicit config file also keeps any stray schemathesis.toml out.
cat >"$WORK/schemathesis.toml" <<'EOF'
[cache]
enabled = false

# Schemathesis' default list, plus 413: a body over the documented size limit is
# refused as too large, whatever else is wrong with it.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
EOF
report_args=()
if [ -n "$REPORT_DIR" ]; then
  report_args=(--report junit,ndjson --report-dir "$REPORT_DIR")
fi
# shellcheck disable=SC2206 # SCHEMATHESIS_EXTRA_ARGS is split on purpose
extra_args=(${SCHEMATHESIS_EXTRA_ARGS:-})

echo "running schemathesis $SCHEMATHESIS_VERSION against $BASE/api/v1/openapi.json..." >&2
status=0
NO_COLOR=1 \
  SCHEMATHESIS_HOOKS="$WORK/hooks.py" \
  AGORA_FUZZ_BASE="$BASE" \
  AGORA_FUZZ_LOGIN="$FUZZ_USER" \
  AGORA_FUZZ_PASSWORD="$FUZZ_PASSWORD" \
  AGORA_FUZZ_REFRESH_TOKEN="$REFRESH_TOKEN" \
  AGORA_FUZZ_SELF_ID="$SELF_ID" \
  AGORA_FUZZ_OTHER_ID="$OTHER_ID" \
  AGORA_FUZZ_OTHER_POSTS="$OTHER_POSTS" \
  AGORA_FUZZ_OTHER_EVENTS="$OTHER_EVENTS" \
  AGORA_FUZZ_INCOMING_REQUEST="$INCOMING_ID" \
  AGORA_FUZZ_OWN_PHOTO="$OWN_PHOTO" \
  AGORA_FUZZ_OWN_PUBLIC_PHOTO="$OWN_PUBLIC_PHOTO" \
  AGORA_FUZZ_ACCESS_TOKEN="$ACCESS_TOKEN" \
  AGORA_FUZZ_PNG="$WORK/tiny.png" \
  AGORA_FUZZ_OTHER_PHOTOS="$OTHER_PHOTOS" \
  "$VENV/bin/schemathesis" --no-color --config-file "$WORK/schemathesis.toml" run "$BASE/api/v1/openapi.json" \
  --url "$BASE" \
  --header "Authorization: Bearer $ACCESS_TOKEN" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers "${SCHEMATHESIS_WORKERS:-1}" \
  --generation-database none \
  --request-timeout 30 \
  --exclude-path /api/v1/notifications/stream \
  --continue-on-failure \
  --output-sanitize false \
  ${report_args[@]+"${report_args[@]}"} \
  ${extra_args[@]+"${extra_args[@]}"} </dev/null || status=$?

if [ "$status" != 0 ] && ! kill -0 "$AGORA_PID" 2>/dev/null; then
  echo "agora exited during the run; its log:" >&2
  cat "$WORK/agora.log" >&2
fi
exit "$status"
