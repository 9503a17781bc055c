#!/usr/bin/env python3
"""Prints the fenced code block that follows `<!-- readme-test: NAME -->` in a Markdown file,
without its fences, exactly as written (so the README's snippets are tested, not copies).

    python3 tests/tools/readme_block.py README.md component > src/main.rs

Exits non-zero when the marker is missing, is not followed by a fenced block, or appears
twice.
"""
import sys


def block(text: str, name: str) -> str:
    marker = f"<!-- readme-test: {name} -->"
    if text.count(marker) != 1:
        raise SystemExit(f"marker {marker!r} found {text.count(marker)} times (want 1)")
    lines = text[text.index(marker) + len(marker):].splitlines()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or not lines[i].startswith("```"):
        raise SystemExit(f"marker {marker!r} is not followed by a fenced code block")
    body = []
    for line in lines[i + 1:]:
        if line.startswith("```"):
            return "\n".join(body) + "\n"
        body.append(line)
    raise SystemExit(f"the block after {marker!r} is not closed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: readme_block.py FILE NAME")
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(block(f.read(), sys.argv[2]))
