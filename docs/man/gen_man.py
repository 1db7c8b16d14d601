#!/usr/bin/env python3
"""Writes a man page for a swift-argument-parser executable from its own description of itself
(`TOOL --experimental-dump-help`), so the page never drifts from the parser: every subcommand,
option, flag and argument, with its help text. Extra sections (FILES, EXIT STATUS, SEE ALSO, ...)
come from docs/man/NAME.extra, plain troff, when it exists.

usage: gen_man.py BINARY SECTION OUTPUT             one page for the whole tool
       gen_man.py --multi-page BINARY SECTION DIR   one page per command (TOOL.1, TOOL-SUB.1, ...)
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


def page(command, path, section, date, extra_name, whole):
    name = "-".join(path)
    lines = [
        f'.TH {name.upper()} {section} "{date}" "Stipple" "Stipple manual"',
        ".SH NAME", f"{escape(name)} \\- {escape(command.get('abstract', ''))}",
        ".SH SYNOPSIS",
    ]
    subcommands = [s for s in command.get("subcommands", []) if s.get("shouldDisplay", True)]
    arguments = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    if subcommands:
        lines.append(f"\\fB{escape(' '.join(path))}\\fR <subcommand> [options]")
    else:
        lines.append(f"\\fB{escape(' '.join(path))}\\fR " + escape(" ".join(synopsis_of(a) for a in arguments)))
    lines += [".SH DESCRIPTION", escape(command.get("abstract", ""))]
    if command.get("discussion"):
        lines += [".PP", escape(command["discussion"])]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub in subcommands:
            if whole:
                lines += command_section(sub, path + [sub["commandName"]])
            else:
                lines += [".TP", f"\\fB{escape(' '.join(path + [sub['commandName']]))}\\fR", escape(sub.get("abstract", "")) +
                          f" See \\fB{escape('-'.join(path + [sub['commandName']]))}\\fR({section})."]
    if arguments:
        lines.append(".SH OPTIONS")
        lines += option_lines(arguments)
    extra = pathlib.Path(__file__).with_name(f"{extra_name}.extra")
    if extra.exists():
        lines.append(extra.read_text().rstrip())
    return "\n".join(lines) + "\n"


def walk(command, path):
    yield command, path
    for sub in command.get("subcommands", []):
        if sub.get("shouldDisplay", True):
            yield from walk(sub, path + [sub["commandName"]])


def main():
    multi = sys.argv[1] == "--multi-page"
    arguments = sys.argv[2:] if multi else sys.argv[1:]
    binary, section, output = arguments[0], arguments[1], pathlib.Path(arguments[2])
    dump = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)
    command = dump["command"]
    name = command["commandName"]
    date = datetime.date.fromtimestamp(pathlib.Path(binary).stat().st_mtime).isoformat()
    if not multi:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page(command, [name], section, date, name, whole=True))
        return
    output.mkdir(parents=True, exist_ok=True)
    for sub, path in walk(command, [name]):
        extra = "-".join(path)
        (output / f"{extra}.{section}").write_text(page(sub, path, section, date, extra, whole=False))


if __name__ == "__main__":
    main()
