"""Test images built locally, without a registry (none is reachable here).

Each image is a ~2 MB root filesystem made of the host's static ``/bin/busybox`` (it has
``sh``, ``httpd`` and ``wget``) plus one small script, turned into an image with
``docker import``. Building is idempotent and cheap: an image whose content label matches
is reused, so many test sessions (and engineers) can call ``ensure_test_images()`` at once.

    HTTP_IMAGE  serves on every port given as an argument (default 8080); GET /health → "ok".
                Has sh and wget, so it doubles as a client: ``wget -qO- http://name:port/health``
                (not ``wget -T``: this static busybox segfaults with it).
    EXIT_IMAGE  exits at once with ``$EXIT_CODE`` (or its first argument; default 0).
    OOM_IMAGE   doubles a string until the memory limit kills it (give it e.g. 16Mi).
    CLIENT_IMAGE  a load client: ``HOST PORT PATH [INTERVAL [each|first]]`` sends ``GET PATH``
                to ``HOST:PORT`` every INTERVAL seconds (default 0.05: 20 a second), each request
                in its own process so a slow one never delays the next, and prints one line per
                request: ``ok N`` or ``fail N <first line of the answer, or nothing>``. HTTP by
                hand over busybox ``nc`` (this static busybox's ``wget`` segfaults here).
                ``each`` (default) looks HOST up and tries its addresses in turn, moving on only
                when no connection can be made, as standard HTTP clients do; ``first`` uses the
                first address only (``tests/support/load.py`` says why both exist).

Usage::

    from tests.support.images import ensure_test_images
    images = ensure_test_images()      # TestImages(http=..., exit=..., oom=...)
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

HTTP_IMAGE = "mlplatform-test/http:1"
EXIT_IMAGE = "mlplatform-test/exit:1"
OOM_IMAGE = "mlplatform-test/oom:1"
CLIENT_IMAGE = "mlplatform-test/client:1"
CONTENT_LABEL = "dev.mlplatform.test.content"
BUSYBOX = Path("/bin/busybox")
_APPLETS = ("sh", "httpd", "wget", "cat", "echo", "sleep", "ls", "touch", "mkdir", "kill", "id")
# The client's own applets. A separate image, so that the other images keep their content
# digest (a digest change makes every worktree sharing the engine rebuild them).
_CLIENT_APPLETS = ("sh", "nc", "nslookup", "sleep", "head", "timeout", "cat", "echo", "kill")

_SERVE = """\
#!/bin/sh
# Serves /www on every port given (default 8080); stops at once on TERM/INT.
[ "$#" -eq 0 ] && set -- 8080
pids=
trap 'kill $pids 2>/dev/null; exit 0' TERM INT
for port in "$@"; do
    httpd -f -p "$port" -h /www &
    pids="$pids $!"
done
wait
"""

_EXIT = """\
#!/bin/sh
# Exits at once with $EXIT_CODE, else the first argument, else 0.
exit "${EXIT_CODE:-${1:-0}}"
"""

_OOM = """\
#!/bin/sh
# Doubles a string until the memory limit kills the process.
x=0123456789abcdef
while :; do x="$x$x"; done
"""


_CLIENT = """\
#!/bin/sh
# HOST PORT PATH [INTERVAL [first|each]]: one GET every INTERVAL seconds, one line per request.
# each (default): look HOST up and try its addresses in turn, moving on only when a connection
# cannot be made (as curl, Go, Python and Java clients do); first: the first address only.
# TERM stops sending; the requests in flight finish (each within 5 s) before it exits.
host=$1 port=$2 path=$3 interval=${4:-0.05} mode=${5:-each}
stop=
trap 'stop=1' TERM INT
get() {
    printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' "$path" "$host" \\
        | timeout 5 nc -w 1 "$1" "$port" 2>&1 | head -n 1
}
addresses() {
    nslookup -type=a "$host" 2>/dev/null | while read -r key value; do
        [ "$key" = "Address:" ] && case "$value" in *:*) ;; *) echo "$value" ;; esac
    done
}
n=0
while [ -z "$stop" ]; do
    n=$((n + 1))
    (
        if [ "$mode" = first ]; then
            line=$(get "$host")
        else
            line="nc: no address for $host"
            for address in $(addresses); do
                line=$(get "$address")
                case "$line" in "nc: "*) ;; *) break ;; esac
            done
        fi
        case "$line" in
            "HTTP/1."?" 200 "*) echo "ok $n" ;;
            *) echo "fail $n $line" ;;
        esac
    ) &
    sleep "$interval"
done
wait
echo "stopped $n"
"""


@dataclass(frozen=True)
class TestImages:
    """The names of the three test images, all present in the engine."""

    __test__ = False  # not a pytest test class, despite the name

    http: str = HTTP_IMAGE
    exit: str = EXIT_IMAGE
    oom: str = OOM_IMAGE
    client: str = CLIENT_IMAGE


def ensure_test_images() -> TestImages:
    """Build the test images unless the engine already has them with the same content."""
    busybox = BUSYBOX.read_bytes()
    for name, script in ((HTTP_IMAGE, _SERVE), (EXIT_IMAGE, _EXIT), (OOM_IMAGE, _OOM)):
        _ensure_image(name, busybox, script)
    _ensure_image(CLIENT_IMAGE, busybox, _CLIENT, applets=_CLIENT_APPLETS)
    return TestImages()


def _ensure_image(
    name: str, busybox: bytes, script: str, applets: tuple[str, ...] = _APPLETS
) -> None:
    extra = b"" if applets == _APPLETS else ("\0" + " ".join(applets)).encode()
    digest = hashlib.sha256(busybox + b"\0" + script.encode() + extra).hexdigest()[:16]
    if _content_label(name) == digest:
        return
    changes = [
        f"LABEL {CONTENT_LABEL}={digest}",
        'ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]',
        "WORKDIR /",
    ]
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    subprocess.run(
        [*command, "-", name],
        input=_rootfs(busybox, script, applets),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _content_label(name: str) -> str | None:
    docker = shutil.which("docker") or "docker"
    result = subprocess.run(
        [docker, "image", "inspect", "--format", "{{json .Config.Labels}}", name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "null") or {}
    value = labels.get(CONTENT_LABEL)
    return value if isinstance(value, str) else None


def _rootfs(busybox: bytes, script: str, applets: tuple[str, ...]) -> bytes:
    """A tar of the root filesystem: busybox, its applet links, /www/health, the script."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("www", 0o755)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        _add_file(tar, "bin/busybox", busybox, 0o755)
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644)
        _add_file(tar, "etc/group", b"root:x:0:\n", 0o644)
        _add_file(tar, "www/health", b"ok\n", 0o644)
        _add_file(tar, "entrypoint.sh", script.encode(), 0o755)
    return buffer.getvalue()


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))
