#!/usr/bin/env python3
"""Writes a man page for a swift-argument-parser executable from its own description of itself
(`TOOL --experimental-dump-help`), so the page never drifts from the parser: every subcommand,
option, flag and argument, with its help text. Extra sections (FILES, EXIT STATUS, SEE ALSO, ...)
come from docs/man/NAME.extra, plain troff, when it exists.

usage: gen_man.py BINARY SECTION OUTPUT
"""

import datetime
import json
import pathlib
import subprocess
import sys


def escape(text):
    text = (text or "").replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())


def synopsis_of(argument):
    names = argument.get("names") or []
    long = next((n["name"] for n in names if n["kind"] in ("long", "longWithSingleDash")), None)
    short = next((n["name"] for n in names if n["kind"] == "short"), None)
    flag = f"--{long}" if long else (f"-{short}" if short else argument.get("valueName", ""))
    value = argument.get("valueName", "")
    if argument["kind"] == "positional":
        text = f"<{value}>"
    elif argument["kind"] == "option":
        text = f"{flag} <{value}>"
    else:
        text = flag
    if argument.get("isRepeating"):
        text += " ..."
    return f"[{text}]" if argument.get("isOptional") else text


def option_lines(arguments):
    out = []
    for argument in arguments:
        if not argument.get("shouldDisplay", True):
            continue
        names = argument.get("names") or []
        labels = [("-" if n["kind"] == "short" else "--") + n["name"] for n in names]
        if argument["kind"] == "option":
            labels = [f"{label} <{argument.get('valueName', '')}>" for label in labels]
        if argument["kind"] == "positional":
            labels = [f"<{argument.get('valueName', '')}>"]
        out.append(".TP")
        out.append("\\fB" + escape(", ".join(labels)) + "\\fR")
        text = argument.get("abstract", "")
        if argument.get("defaultValue") not in (None, ""):
            text += f" (default: {argument['defaultValue']})"
        if argument.get("discussion"):
            text += "\n" + argument["discussion"]
        out.append(escape(text))
    return out


def command_section(command, path):
    out = [f".SS {escape(' '.join(path))}", escape(command.get("abstract", ""))]
    if command.get("discussion"):
        out += [".PP", escape(command["discussion"])]
    arguments = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    if arguments:
        out += [".PP", "\\fB" + escape(" ".join(path)) + "\\fR " + escape(" ".join(synopsis_of(a) for a in arguments))]
        out += option_lines(arguments)
    for sub in command.get("subcommands", []):
        if sub.get("shouldDisplay", True):
            out += command_section(sub, path + [sub["commandName"]])
    return out


def main():
    binary, section, output = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    dump = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)
    command = dump["command"]
    name = command["commandName"]
    date = datetime.date.fromtimestamp(pathlib.Path(binary).stat().st_mtime).isoformat()
    lines = [
        f'.TH {name.upper()} {section} "{date}" "Stipple" "Stipple manual"',
        ".SH NAME", f"{escape(name)} \\- {escape(command.get('abstract', ''))}",
        ".SH SYNOPSIS",
    ]
    subcommands = [s for s in command.get("subcommands", []) if s.get("shouldDisplay", True)]
    if subcommands:
        lines.append(f"\\fB{escape(name)}\\fR <subcommand> [options]")
    else:
        lines.append(f"\\fB{escape(name)}\\fR " + escape(" ".join(synopsis_of(a) for a in command.get("arguments", []) if a.get("shouldDisplay", True))))
    lines += [".SH DESCRIPTION", escape(command.get("abstract", ""))]
    if command.get("discussion"):
        lines += [".PP", escape(command["discussion"])]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub in subcommands:
            lines += command_section(sub, [name, sub["commandName"]])
    options = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    if options:
        lines.append(".SH OPTIONS")
        lines += option_lines(options)
    extra = pathlib.Path(__file__).with_name(f"{name}.extra")
    if extra.exists():
        lines.append(extra.read_text().rstrip())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
