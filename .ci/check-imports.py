#!/usr/bin/env python3
"""Every module a target imports is one it declares in Package.swift (issue 17): an import that
works only because another target happened to build the module first breaks on the next change.

Reads `swift package dump-package`; platform modules and the toolchain's own are allowed.
Exit 1 listing each target and the modules it imports without declaring them."""
import glob
import json
import os
import re
import subprocess
import sys

TOOLCHAIN = {"Foundation", "FoundationEssentials", "Glibc", "Musl", "Darwin", "Dispatch", "Synchronization",
             "Testing", "XCTest", "_Concurrency"}
IMPORT = re.compile(r'^\s*(?:@testable\s+|public\s+|internal\s+|package\s+)?import\s+(?:struct\s+|class\s+|enum\s+|func\s+)?(\w+)')

package = json.loads(subprocess.run([os.environ.get("SWIFT", "swift"), "package", "dump-package"], check=True, capture_output=True, text=True).stdout)
failures = []
for target in package["targets"]:
    name = target["name"]
    path = target.get("path") or ("Tests/" if target["type"] == "test" else "Sources/") + name
    declared = {name}
    for dependency in target["dependencies"]:
        for kind in ("byName", "target", "product"):
            if kind in dependency:
                declared.add(dependency[kind][0])
    imported = set()
    for source in glob.glob(path + "/**/*.swift", recursive=True):
        in_string = False
        for line in open(source, encoding="utf-8"):
            if line.count('"""') % 2 == 1:
                in_string = not in_string
                continue
            match = None if in_string else IMPORT.match(line)
            if match:
                imported.add(match.group(1))
    undeclared = sorted(imported - declared - TOOLCHAIN)
    if undeclared:
        failures.append(f"{name}: imports {', '.join(undeclared)} without declaring them in Package.swift")
for failure in failures:
    print(failure, file=sys.stderr)
sys.exit(1 if failures else 0)
