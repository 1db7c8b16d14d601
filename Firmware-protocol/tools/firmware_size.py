#!/usr/bin/env python3
"""Flash, RAM and worst-case stack of the pen firmware core on the Cortex-M0+ reference target.

Reads `arm-none-eabi-size` of the linked image and GCC's call graph with stack usage
(`-fcallgraph-info=su`, one .ci file per object), finds the deepest call chain from each entry
(the main loop, and the interrupts that may preempt it), and fails above the budget:
16 KiB of flash, 2 KiB of RAM (static data plus the worst-case stack).

Indirect calls are the HAL's: each is charged the largest frame of the port's HAL functions.
A recursive call graph fails (its stack could not be bounded).
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

FLASH_BUDGET = 16 * 1024
RAM_BUDGET = 2 * 1024
# Cortex-M0+ exception entry pushes eight words; one level of interrupt preemption is assumed
# (the reference port runs every interrupt at one priority).
EXCEPTION_FRAME = 32

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def short(title):
    return title.rsplit(":", 1)[-1]


def load(ci_files):
    frames, calls = {}, {}
    for path in ci_files:
        text = Path(path).read_text()
        for title, label in NODE.findall(text):
            m = re.search(r"\\n(\d+) bytes \((static|dynamic[^)]*)\)", label)
            if m:
                if m.group(2) != "static":
                    sys.exit(f"{short(title)} has a {m.group(2)} stack frame: its stack cannot be bounded")
                frames[short(title)] = int(m.group(1))
        for src, dst in EDGE.findall(text):
            calls.setdefault(short(src), set()).add(short(dst))
    return frames, calls


def deepest(fn, frames, calls, hal_frame, path=()):
    if fn in path:
        sys.exit("recursion in the call graph: " + " -> ".join(path + (fn,)))
    own = frames.get(fn, 0)  # library leaves (memset, memcpy) without a node use no frame of note
    best, chain = 0, ()
    for callee in calls.get(fn, ()):
        if callee == "__indirect_call":
            cost, sub = hal_frame, ("<HAL>",)
        else:
            cost, sub = deepest(callee, frames, calls, hal_frame, path + (fn,))
        if cost > best:
            best, chain = cost, sub
    return own + best, (fn,) + chain


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elf", required=True)
    ap.add_argument("--size", default="arm-none-eabi-size")
    ap.add_argument("--main", default="reset_handler", help="the entry of the main context")
    ap.add_argument("--isr", action="append", default=[], help="an interrupt handler (repeat)")
    ap.add_argument("--hal", action="append", default=[], help="a HAL function of the port (repeat)")
    ap.add_argument("ci", nargs="+")
    args = ap.parse_args()

    out = subprocess.run([args.size, "-A", "-d", args.elf], check=True, capture_output=True, text=True).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", out, re.M)}
    flash = sections.get(".text", 0) + sections.get(".ARM.exidx", 0) + sections.get(".data", 0)
    static_ram = sections.get(".data", 0) + sections.get(".bss", 0)

    frames, calls = load(args.ci)
    missing = [h for h in args.hal if h not in frames]
    if missing:
        sys.exit(f"HAL functions not in the call graph: {missing}")
    hal_frame = max((deepest(h, frames, calls, 0)[0] for h in args.hal), default=0)
    main_stack, main_chain = deepest(args.main, frames, calls, hal_frame)
    isr_stack, isr_chain = 0, ()
    for isr in args.isr:
        cost, chain = deepest(isr, frames, calls, hal_frame)
        if cost > isr_stack:
            isr_stack, isr_chain = cost, chain
    stack = main_stack + EXCEPTION_FRAME + isr_stack
    ram = static_ram + stack

    print(f"flash {flash} B of {FLASH_BUDGET} (text + rodata + data)")
    print(f"RAM {ram} B of {RAM_BUDGET}: static {static_ram} B + worst-case stack {stack} B")
    print(f"  main context {main_stack} B: {' -> '.join(main_chain)}")
    print(f"  + exception frame {EXCEPTION_FRAME} B + interrupt {isr_stack} B: {' -> '.join(isr_chain)}")
    ok = flash <= FLASH_BUDGET and ram <= RAM_BUDGET
    if not ok:
        print("over the firmware budget (16 KiB flash, 2 KiB RAM)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
