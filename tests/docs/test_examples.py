"""Every fenced example of README.md and docs/*.md works when pasted.

How each fenced block is treated, by its language tag (a page added to docs/ is picked
up by the glob below, with no change here):

- ``python``: saved to a fresh temporary directory and run there with ``python FILE``; it
  must exit 0. What the page says a line gives is checked too: a ``print(...)`` line
  whose comment follows it (``print(run.status)  # succeeded``) must print that line,
  in order with the other such lines; an expression statement at the top level whose
  comment is a Python literal (``s.kind  # "cron"``) must equal it. Any other comment
  is prose. A block whose first line is ``# test_NAME.py ...`` is a test module: saved
  under that name and run with ``python -m pytest``.
- ``bash`` / ``sh``: the shell blocks of one page run in order, as a reader pastes them,
  in one temporary directory of their own (so ``./tickwork.db`` is a fresh database)
  that has the repository's ``examples/`` and ``benchmarks/``. Each block runs with
  ``bash -e -o pipefail`` and must exit 0: a command shown failing is written
  ``command || echo ...``. A block whose only command is ``tickwork worker ...`` or
  ``tickwork serve ...`` is "the first shell": it is started in the background for the
  page's next blocks, and must stop with exit 0 on SIGTERM at the end. ``serve`` listens
  on a free port, and the next blocks' ``127.0.0.1:8000`` (its default address, which
  pages show) is rewritten to it.
- ``console``: its lines starting with ``$ `` run like a bash block; the other lines are
  sample output and are not compared.
- ``toml``: read as a tickwork settings file: valid TOML whose keys tickwork knows.
- no tag, ``text``, ``json`` and the like: output and diagrams, not run.

A block that cannot run as written is preceded, on the line before its fence, by
``<!-- docs-test: skip: WHY -->``. Keep that list tiny (``MAX_SKIPPED``): a skipped
example is an untested one. A shell block whose measurement takes long at the size a
reader runs is preceded instead by ``<!-- docs-test: smaller: `TEXT` as `SMALLER`; ... -->``:
the test runs the same commands with each TEXT (which must be in the block) replaced,
e.g. a benchmark's size or duration.
"""

from __future__ import annotations

import ast
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tokenize
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tickwork.cli.main import _register_commands
from tickwork.cli.settings import SettingError, read_file

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MAX_SKIPPED = 3
SHELLS = ("bash", "sh", "console")
SKIP_RE = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<why>.+?)\s*-->")
SMALLER_RE = re.compile(r"<!--\s*docs-test:\s*smaller:\s*(?P<swaps>.+?)\s*-->")
SWAP_RE = re.compile(r"`(?P<text>[^`]+)` as `(?P<smaller>[^`]+)`")
MARKER_RE = re.compile(r"<!--\s*docs-test:")
FENCE_RE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
BLOCK_TIMEOUT = 180.0


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None
    #: What the test replaces in the block, and with what (``docs-test: smaller``).
    smaller: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the docs-test marker before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE_RE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, start = match["fence"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        before = lines[start - 1] if start > 0 else ""
        marker = SKIP_RE.search(before)
        smaller = SMALLER_RE.search(before)
        swaps = SWAP_RE.findall(smaller["swaps"]) if smaller else []
        assert not smaller or len(swaps) == smaller["swaps"].count(" as "), (
            f"{page.name}:{start}: write each swap as `TEXT` as `SMALLER`"
        )
        found.append(
            Block(
                page, start + 1, match["lang"].lower(), "\n".join(body) + "\n",
                marker["why"] if marker else None, tuple(swaps),
            )
        )  # fmt: skip
        i += 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks_of(page)]


def env_for(directory: Path) -> dict[str, str]:
    """The reader's environment: this interpreter's ``python`` and ``tickwork`` first
    on PATH, no TICKWORK_* setting inherited from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["HOME"] = str(directory)
    env.pop("COLUMNS", None)
    env.pop("PYTHONPATH", None)
    return env


def run_checked(args: list[str], cwd: Path, what: str) -> str:
    """Run ``args``; it must exit 0 without a traceback. Its stdout."""
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env_for(cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (
        f"{what} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


# -- the convention itself ------------------------------------------------------------------


def test_pages_are_found_and_have_examples() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "python-api.md", "configuration.md", "schedules.md"} <= names
    langs = {b.lang for b in ALL_BLOCKS}
    assert {"python", "bash"} <= langs


def test_skipped_examples_are_few_and_say_why() -> None:
    skipped = [b for b in ALL_BLOCKS if b.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, [f"{b.where}: {b.skip}" for b in skipped]
    for b in skipped:
        assert len(b.skip or "") >= 10, f"{b.where}: say why it cannot run"


def test_only_shell_blocks_are_run_smaller() -> None:
    for b in ALL_BLOCKS:
        assert not b.smaller or b.lang in SHELLS, f"{b.where}: only a shell block runs smaller"


def test_a_skip_marker_is_right_before_a_fence() -> None:
    """A marker that is not on the line before a fence skips (or changes) nothing: it is
    a mistake."""
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if MARKER_RE.search(line):
                after = lines[n + 1] if n + 1 < len(lines) else ""
                assert FENCE_RE.match(after), f"{page.name}:{n + 1}: marker not before a fence"


# -- python ---------------------------------------------------------------------------------

PYTHON = [b for b in ALL_BLOCKS if b.lang == "python"]


def _comments(code: str) -> dict[int, str]:
    """Line number (1-based) -> the text of the comment that ends that line."""
    found: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string[1:].strip()
    return found


def _is_print(node: ast.Expr) -> bool:
    call = node.value
    return (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
    )


def expected_prints(code: str) -> list[str]:
    """What the ``print(...)`` lines followed by a comment say they print, in order."""
    comments = _comments(code)
    expected = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Expr) and _is_print(node) and node.end_lineno in comments:
            expected.append((node.lineno, comments[node.end_lineno]))
    return [text for _, text in sorted(expected)]


def with_checked_values(code: str) -> str:
    """``code`` with an ``assert`` after each top-level expression statement whose
    comment is a Python literal: the value the page says it has."""
    comments = _comments(code)
    lines = code.splitlines()
    checks: dict[int, str] = {}  # the line after which to check, the check
    for node in ast.parse(code).body:
        if not isinstance(node, ast.Expr) or node.end_lineno not in comments:
            continue
        if _is_print(node):
            continue  # what it prints is checked, not its value
        try:
            value = ast.literal_eval(comments[node.end_lineno])
        except (ValueError, SyntaxError):
            continue  # prose, not a value
        source = ast.get_source_segment(code, node.value)
        checks[node.end_lineno] = (
            f"assert (_said := ({source})) == {value!r}, 'line {node.lineno}: ' + repr(_said)"
        )
    out = []
    for number, line in enumerate(lines, start=1):
        out.append(line)
        if number in checks:
            out.append(checks[number])
    return "\n".join(out) + "\n"


def check_printed(stdout: str, expected: list[str], where: str) -> None:
    """Each expected line is printed, in order (other lines may come between)."""
    printed = iter(stdout.splitlines())
    for line in expected:
        assert any(got.rstrip() == line for got in printed), (
            f"{where}: the page says a line prints {line!r}; it printed:\n{stdout}"
        )


@pytest.mark.timeout(BLOCK_TIMEOUT + 60)
@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_example(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    first = block.code.lstrip().splitlines()[0] if block.code.strip() else ""
    test_file = re.match(r"#\s*(test_\w+\.py)\b", first)
    if test_file:
        path = tmp_path / test_file[1]
        path.write_text(block.code)
        run_checked(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name],
            tmp_path,
            f"pytest on {block.where}",
        )
        return
    path = tmp_path / "example.py"
    path.write_text(with_checked_values(block.code))
    stdout = run_checked([sys.executable, path.name], tmp_path, f"python {block.where}")
    check_printed(stdout, expected_prints(block.code), block.where)


# -- toml -----------------------------------------------------------------------------------

TOML = [b for b in ALL_BLOCKS if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=[b.where for b in TOML])
def test_toml_example_is_a_settings_file(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    _register_commands()  # every command declares its settings: the keys the file may hold
    path = tmp_path / "tickwork.toml"
    path.write_text(block.code)
    tomllib.loads(block.code)
    try:
        read_file(path)
    except SettingError as exc:
        pytest.fail(f"{block.where}: {exc}")


# -- shell ----------------------------------------------------------------------------------

SHELL_PAGES = sorted({b.page for b in ALL_BLOCKS if b.lang in SHELLS})


def shell_code(block: Block) -> str:
    """The block's commands, with what a ``docs-test: smaller`` marker replaces."""
    code = block.code
    if block.lang == "console":
        code = "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))
    for text, smaller in block.smaller:
        assert text in code, f"{block.where}: `{text}` (docs-test: smaller) is not in the block"
        code = code.replace(text, smaller)
    return code


#: Commands that run until stopped, and what each prints once it is ready.
LONG_RUNNING = {"tickwork worker": "tickwork worker: node", "tickwork serve": "tickwork serve: "}


def long_running(code: str) -> str | None:
    """What the block's only command prints when ready, if it runs until stopped."""
    commands = [
        line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(commands) != 1:
        return None
    first = commands[0].lstrip()
    return next((ready for start, ready in LONG_RUNNING.items() if first.startswith(start)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Background:
    """A worker a page starts "in a first shell"."""

    def __init__(self, code: str, cwd: Path, ready: str) -> None:
        self.log = cwd / "worker.log"
        self._out = self.log.open("wb")
        #: Where a ``serve`` listens (the page's ``127.0.0.1:8000`` means it).
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {code.strip()}"],
            cwd=cwd,
            env=env_for(cwd) | {"TICKWORK_PORT": str(self.port)},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        try:
            while ready not in self.output():
                assert self.proc.poll() is None, f"{code.strip()} exited:\n{self.output()}"
                assert time.monotonic() < deadline, (
                    f"{code.strip()} did not start:\n{self.output()}"
                )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9
        finally:
            self._out.close()


# A page's tour runs dozens of CLI commands, each a new interpreter: minutes on a busy
# machine, past the suite's 120 s per test.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", SHELL_PAGES, ids=[p.name for p in SHELL_PAGES])
def test_shell_examples_of_a_page_in_order(page: Path, tmp_path: Path) -> None:
    run_shell_blocks([b for b in ALL_BLOCKS if b.page == page and b.lang in SHELLS], tmp_path)


def run_shell_blocks(blocks: list[Block], tmp_path: Path) -> None:
    for name in ("examples", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    workers: list[Background] = []
    try:
        for block in blocks:
            if block.skip:
                continue
            code = shell_code(block)
            ready = long_running(code)
            if ready is not None:
                workers.append(Background(code, tmp_path, ready))
                continue
            for w in workers:
                code = code.replace("127.0.0.1:8000", f"127.0.0.1:{w.port}")
            run_checked(["bash", "-e", "-o", "pipefail", "-c", code], tmp_path, block.where)
    finally:
        codes = [w.stop() for w in workers]
    for w, code in zip(workers, codes, strict=True):
        assert code == 0, f"the worker exited {code} on SIGTERM:\n{w.output()}"


# -- the runner on pages of its own ---------------------------------------------------------


def test_the_runner_catches_a_failing_example_and_serves_in_the_background(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\ntickwork serve --import examples.tasks\n```\n\n"
        "```console\n$ tickwork --json status | python -c 'import sys; print(sys.stdin.read())'\n"
        "{...}\n```\n\n"
        "```bash\ncurl -fsS http://127.0.0.1:8000/health\n```\n\n"
        "```bash\ntickwork show --id nope\n```\n"
    )
    blocks = blocks_of(page)
    assert [b.lang for b in blocks] == ["bash", "console", "bash", "bash"]
    with pytest.raises(AssertionError, match="schedule 'nope' not found"):
        (tmp_path / "run").mkdir()
        run_shell_blocks(blocks, tmp_path / "run")
    with pytest.raises(AssertionError, match="NameError"):
        python = Block(page, 1, "python", "print(undefined)\n", None)
        test_python_example(python, tmp_path)


def test_the_runner_runs_a_block_marked_smaller_with_its_swaps(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: smaller: `10000` as `10`; `seconds 30` as `seconds 1` -->\n"
        "```bash\necho 10000 runs for seconds 30 > said.txt\n```\n"
        "<!-- docs-test: smaller: `20000` as `20` -->\n"
        "```bash\necho 10000\n```\n"
    )
    marked, stale = blocks_of(page)
    assert marked.smaller == (("10000", "10"), ("seconds 30", "seconds 1"))
    (tmp_path / "run").mkdir()
    run_shell_blocks([marked], tmp_path / "run")
    assert (tmp_path / "run" / "said.txt").read_text() == "10 runs for seconds 1\n"
    with pytest.raises(AssertionError, match=r"`20000` .* is not in the block"):
        shell_code(stale)


def test_the_runner_checks_what_a_page_says_a_line_prints_or_is(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    good = (
        "import json\n"
        "for n in (1, 2):\n"
        "    print(n * 10)  # 20\n"
        'print(json.dumps({"a": 1}))  # {"a": 1}\n'
        "1 + 1  # 2\n"
        "'tick' + 'work'  # 'tickwork'\n"
        "len('abc')  # three characters, said in prose\n"
    )
    assert expected_prints(good) == ["20", '{"a": 1}']
    for name in ("good", "print", "value"):
        (tmp_path / name).mkdir()
    test_python_example(Block(page, 1, "python", good, None), tmp_path / "good")
    with pytest.raises(AssertionError, match="says a line prints '30'"):
        wrong = "print(10 * 2)  # 30\n"
        test_python_example(Block(page, 1, "python", wrong, None), tmp_path / "print")
    with pytest.raises(AssertionError, match="line 2: 'cron'"):
        wrong = "kind = 'cron'\nkind  # 'interval'\n"
        test_python_example(Block(page, 1, "python", wrong, None), tmp_path / "value")
