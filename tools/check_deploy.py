"""Checks deploy/ as far as this machine can (run by .ci/run):

- the systemd unit with ``systemd-analyze verify`` (its ExecStart pointed at the ``mmfast``
  given, the one just installed from the wheel), when systemd-analyze is there;
- the Dockerfile's shape: a build stage and a runtime stage, the same build and install
  scripts CI runs (``deploy/build-wheel.sh``, ``deploy/install-wheel.sh``), a non-root USER,
  STOPSIGNAL SIGTERM, the default command the simulator run, nothing secret copied in.

    python tools/check_deploy.py PATH_TO_MMFAST
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT_BIN = "/opt/mmfast/venv/bin/mmfast"


def check_unit(mmfast: str) -> list[str]:
    text = (DEPLOY / "mmfast.service").read_text()
    bad = []
    for need in (
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        "RestartPreventExitStatus=2 3",
        "Environment=MMFAST_API_KEY_FILE=",
        "User=mmfast",
        "UMask=0077",
    ):
        if need not in text:
            bad.append(f"mmfast.service: no {need}")
    if UNIT_BIN not in text:
        bad.append(f"mmfast.service: ExecStart is not {UNIT_BIN}")
    if re.search(r"MMFAST_API_PRIVATE_KEY", text):
        bad.append("mmfast.service: a key in the environment (use the key file)")
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("systemd-analyze not here: the unit's syntax is not verified")
        return bad
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "mmfast.service"
        unit.write_text(text.replace(UNIT_BIN, mmfast))
        p = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or p.stderr.strip():
            bad.append(f"systemd-analyze verify: {p.returncode} {p.stderr.strip()}")
        else:
            print("systemd-analyze verify: ok")
    return bad


def check_dockerfile() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]
    bad = []
    if sum(x.startswith("FROM ") for x in lines) != 2:
        bad.append("Dockerfile: not two stages (build, runtime)")
    if "RUN sh deploy/build-wheel.sh /dist" not in lines:
        bad.append("Dockerfile: the build stage does not run deploy/build-wheel.sh")
    if not any("install-wheel.sh /dist /opt/mmfast/venv" in x for x in lines):
        bad.append("Dockerfile: the runtime stage does not run deploy/install-wheel.sh")
    users = [x.split()[1] for x in lines if x.startswith("USER ")]
    if not users or users[-1] in ("root", "0"):
        bad.append("Dockerfile: the image does not run as a non-root user")
    if "STOPSIGNAL SIGTERM" not in lines:
        bad.append("Dockerfile: no STOPSIGNAL SIGTERM")
    if 'CMD ["run"]' not in lines or 'ENTRYPOINT ["mmfast"]' not in lines:
        bad.append("Dockerfile: the default is not `mmfast run` (the simulator)")
    for x in lines:
        if x.startswith(("COPY", "ADD")) and re.search(r"\.key|\.env|secret", x, re.I):
            bad.append(f"Dockerfile: copies something secret: {x}")
    for x in lines:  # every path the build stage copies exists
        m = re.fullmatch(r"COPY (?!--from)(.+) \S+", x)
        if m:
            for src in m.group(1).split():
                if not (ROOT / src).exists():
                    bad.append(f"Dockerfile: COPY {src}: not in the repository")
    return bad


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    bad = check_unit(argv[0]) + check_dockerfile()
    for b in bad:
        print(f"deploy check failed: {b}", file=sys.stderr)
    if not bad:
        print("deploy/: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
