#!/usr/bin/env python3
"""Runs the commands of Markdown documents, in order, as a reader would, and fails on any answer other than
the one the text shows.

What runs: every fenced block whose info string is `console`. In it, a line starting with `$ ` is a command
(a line ending in `\\` continues it on the next line), the lines after it up to the next command are the
output it must print (standard output and standard error together), and a line starting with `# ` is a
comment. The commands of one document run in one bash shell, so a variable set by one is there for the next.
Other blocks (`sh`, `json`, `toml`, `rust`, ...) are shown, not run.

Expected output:
- a line is compared with the actual line after trailing spaces are dropped; empty lines at the start and the
  end of both are ignored, and a command that shows no output must print none;
- `…` in a line stands for any text within that line; a line that is only `…` stands for any number of lines
  (none included);
- a last line `[exit N]` says the command exits with N; otherwise it must exit 0.

Directives, as HTML comments (invisible on GitHub) before a block:
- `<!-- doctest: background wait=URL -->`: the block's one command is what a reader starts in another terminal
  (`make run`): it runs in the background (a running one is stopped first, as with Ctrl-C), and the next
  block waits until URL answers 200;
- `<!-- doctest: stop -->`: stops the background command (Ctrl-C in that terminal);
- `<!-- doctest: skip REASON -->`: the next block is not run; REASON says why (CI runs it itself, ...).

Usage: rundoc.py --workdir DIR --logs DIR FILE.md...   (each file with a fresh shell, in DIR)
"""

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request

ELLIPSIS = "…"
COMMAND_TIMEOUT = float(os.environ.get("DOCTEST_COMMAND_TIMEOUT", "300"))
WAIT_TIMEOUT = float(os.environ.get("DOCTEST_WAIT_TIMEOUT", "900"))


class Step:
    def __init__(self, kind, line, command="", expected=None, wait=None, reason=""):
        self.kind = kind  # "run", "background", "stop" or "skip"
        self.line = line
        self.command = command
        self.expected = expected or []
        self.wait = wait
        self.reason = reason


def parse(path):
    """The steps of one Markdown file, in order."""
    lines = open(path, encoding="utf-8").read().split("\n")
    steps = []
    directive = None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r"^\s*<!--\s*doctest:\s*(.*?)\s*-->\s*$", line)
        if match:
            words = match.group(1).split()
            if not words or words[0] not in ("background", "stop", "skip"):
                raise SystemExit(f"{path}:{i + 1}: unknown doctest directive {match.group(1)!r}")
            if words[0] == "stop":
                steps.append(Step("stop", i + 1))
            else:
                directive = (words[0], words[1:], i + 1)
            i += 1
            continue
        fence = re.match(r"^(\s*)(```+|~~~+)\s*(\S*)", line)
        if not fence:
            i += 1
            continue
        indent, marker, info = fence.group(1), fence.group(2), fence.group(3)
        body_start = i + 1
        j = body_start
        while j < len(lines) and not lines[j].strip().startswith(marker):
            j += 1
        body = [text[len(indent):] if text.startswith(indent) else text for text in lines[body_start:j]]
        i = j + 1
        if info != "console":
            if directive:
                raise SystemExit(f"{path}:{directive[2]}: a doctest directive must precede a console block")
            continue
        block_steps = parse_console(body, body_start + 1, path)
        if directive:
            kind, args, at = directive
            directive = None
            if kind == "skip":
                if not args:
                    raise SystemExit(f"{path}:{at}: `doctest: skip` needs a reason")
                steps.append(Step("skip", body_start + 1, reason=" ".join(args)))
                continue
            if len(block_steps) != 1 or block_steps[0].expected:
                raise SystemExit(f"{path}:{at}: a background block holds one command and no output")
            waits = [arg[len("wait="):] for arg in args if arg.startswith("wait=")]
            step = block_steps[0]
            step.kind, step.wait = "background", (waits[0] if waits else None)
            steps.append(step)
            continue
        steps.extend(block_steps)
    return steps


def parse_console(body, first_line, path):
    steps = []
    current = None
    k = 0
    while k < len(body):
        text = body[k]
        if text.startswith("$ "):
            command_lines = [text[2:]]
            start = first_line + k
            while command_lines[-1].endswith("\\") and k + 1 < len(body):
                k += 1
                command_lines.append(body[k])
            current = Step("run", start, command="\n".join(command_lines))
            steps.append(current)
        elif text.startswith("# ") or text == "#":
            pass
        elif current is None:
            if text.strip():
                raise SystemExit(f"{path}:{first_line + k}: output before any command: {text!r}")
        else:
            current.expected.append(text)
        k += 1
    return steps


def trim(lines):
    lines = [line.rstrip() for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected, actual):
    """Whether `actual` (lines) is what `expected` (lines, with `…`) describes."""
    pattern = []
    for line in expected:
        if line.strip() == ELLIPSIS:
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            parts = [re.escape(part) for part in line.split(ELLIPSIS)]
            pattern.append("[^\n]*?".join(parts) + r"\n")
    return re.fullmatch("".join(pattern), "".join(line + "\n" for line in actual)) is not None


class Shell:
    """One bash process; each command's output is read up to a marker line carrying its exit code."""

    MARK = "__doctest_done_7f3a__"

    def __init__(self, workdir, env):
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.buffer = b""

    def run(self, command, timeout):
        # Standard input from /dev/null: a command that reads it must not eat the commands after it.
        script = (
            f"{{\n{command}\n}} < /dev/null\n"
            f"__doctest_rc=$?; printf '\\n{self.MARK} %d\\n' \"$__doctest_rc\"\n"
        )
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        deadline = time.time() + timeout
        marker = re.compile(rb"\n" + self.MARK.encode() + rb" (\d+)\n")
        while True:
            found = marker.search(self.buffer)
            if found:
                output = self.buffer[: found.start()]
                self.buffer = self.buffer[found.end():]
                return output.decode("utf-8", "replace"), int(found.group(1))
            left = deadline - time.time()
            if left <= 0:
                return self.buffer.decode("utf-8", "replace"), None
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return self.buffer.decode("utf-8", "replace"), None
                self.buffer += chunk

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class Background:
    """The command a reader runs in another terminal (`make run`)."""

    def __init__(self, logs):
        self.logs = logs
        self.proc = None
        self.log_path = None
        self.count = 0

    def start(self, command, workdir, env):
        self.stop()
        self.count += 1
        self.log_path = os.path.join(self.logs, f"background-{self.count}.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", command],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self):
        """As Ctrl-C would: SIGINT to the whole process group, then a wait for it to end."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def wait_for(self, url):
        deadline = time.time() + WAIT_TIMEOUT
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return f"the background command exited with {self.proc.returncode}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return None
            except OSError:
                pass
            time.sleep(0.2)
        return f"{url} did not answer 200 within {WAIT_TIMEOUT:.0f} s"

    def tail(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        return "".join(open(self.log_path, encoding="utf-8", errors="replace").readlines()[-30:])


def run_file(path, workdir, env, logs):
    steps = parse(path)
    if not any(step.kind == "run" for step in steps):
        raise SystemExit(f"{path}: no command to run (a document listed here must have console blocks)")
    shell = Shell(workdir, env)
    background = Background(logs)
    pending_wait = None
    ran = skipped = 0
    try:
        for step in steps:
            where = f"{path}:{step.line}"
            if step.kind == "skip":
                print(f"  skip {where}: {step.reason}")
                skipped += 1
                continue
            if step.kind == "stop":
                background.stop()
                continue
            if step.kind == "background":
                print(f"  background {where}: {step.command}")
                background.start(step.command, workdir, env)
                pending_wait = step.wait
                continue
            if pending_wait:
                problem = background.wait_for(pending_wait)
                if problem:
                    fail(where, step.command, [], problem, background)
                pending_wait = None
            expected = trim(step.expected)
            exit_code = 0
            if expected and re.fullmatch(r"\[exit (\d+)\]", expected[-1]):
                exit_code = int(expected.pop()[6:-1])
            output, code = shell.run(step.command, COMMAND_TIMEOUT)
            actual = trim(output.split("\n"))
            if code is None:
                fail(where, step.command, expected, "\n".join(actual) + "\n(no answer: timed out)", background)
            if code != exit_code or not matches(expected, actual):
                shown = "\n".join(actual) + (f"\n[exit {code}]" if code != exit_code else "")
                fail(where, step.command, expected + ([f"[exit {exit_code}]"] if exit_code else []), shown,
                     background)
            ran += 1
    finally:
        background.stop()
        shell.close()
    print(f"  {path}: {ran} commands answered as documented ({skipped} blocks skipped)")


def fail(where, command, expected, actual, background):
    print(f"\nFAIL {where}\n$ {command}\n--- the document shows:\n" + "\n".join(expected)
          + f"\n--- the command printed:\n{actual}\n", file=sys.stderr)
    tail = background.tail()
    if tail:
        print(f"--- the background command's last lines:\n{tail}", file=sys.stderr)
    raise SystemExit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--logs", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    env = dict(os.environ)
    for path in args.files:
        print(f"== {path}")
        run_file(path, args.workdir, env, args.logs)


if __name__ == "__main__":
    main()
