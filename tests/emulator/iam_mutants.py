"""Removing any one statement from any function's role must fail a test.

For each `Sid` in each function's `Policies` (or its written-out role's) in `infra/template.yaml`, writes
a copy of the template without that statement, runs the integration tests
against an emulator that reads the copy (`SHIPGATE_TEMPLATE`), and reports
the statements whose removal no test noticed. It runs the function's own
integration tests and the missing-key check of `tests/tests/iam.rs`; the static check in
`tests/tests/infra.rs` is left out: this asks whether running the functions
as their roles notices. `make iam-mutants` runs it; it takes a while (one
test run per statement), so CI does not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
def test_filter(function: str) -> str:
    """The function's own integration tests and the IAM tests
    (`ScanGateFunction` -> `binary(scan_gate)`)."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", function.removesuffix("Function")).lower()
    return f"binary({name}) | test(every_function_learns_that_a_key_it_may_read_is_missing)"


def statements(lines: list[str]) -> list[tuple[str, str, int, int]]:
    """(function, sid, first line, end line) of every statement with a Sid
    inside a function's Policies."""
    out = []
    function = None
    for i, line in enumerate(lines):
        # A function's statements are in its Policies, or in its role when the
        # template writes the role out (`DeployHooksRole` for `DeployHooksFunction`).
        m = re.match(r"^  (\w+?)(?:Function|Role):\s*$", line)
        if m:
            function = m.group(1) + "Function"
        elif re.match(r"^  \w", line):
            function = None
        m = re.match(r"^(\s+)- Sid: (\w+)", line)
        if function and m:
            indent = len(m.group(1))
            end = i + 1
            while end < len(lines):
                stripped = lines[end].lstrip()
                current = len(lines[end]) - len(stripped)
                if stripped and (current < indent or (current == indent and stripped.startswith("- "))):
                    break
                if stripped.startswith("#") and current == indent:
                    break
                end += 1
            out.append((function, m.group(2), i, end))
    return out


def main() -> int:
    lines = TEMPLATE.read_text().splitlines(keepends=True)
    survivors = []
    found = statements(lines)
    print(f"{len(found)} statements", flush=True)
    for function, sid, start, end in found:
        mutated = lines[:start] + lines[end:]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.writelines(mutated)
        env = {**os.environ, "SHIPGATE_TEMPLATE": f.name}
        result = subprocess.run(
            ["cargo", "nextest", "run", "-p", "shipgate-tests", "--no-fail-fast", "-E", test_filter(function)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        os.unlink(f.name)
        output = result.stdout + result.stderr
        failed = sorted(set(re.findall(r"FAIL \[.*?\] \(.*?\) shipgate-tests::(\S+ \S+)", output)))
        verdict = f"caught by {len(failed)}: {', '.join(failed[:3])}" if result.returncode else "SURVIVED"
        print(f"{function:28} {sid:32} {verdict}", flush=True)
        if not result.returncode:
            survivors.append(f"{function}.{sid}")
    print(f"\n{len(found) - len(survivors)} of {len(found)} removals caught; survivors: {survivors or 'none'}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
