"""``rsa-toolkit weights fetch`` / ``fetch_weights`` against a local HTTP server (127.0.0.1, ephemeral port).

The server is written here (``http.server`` with Range support, a switch to ignore Range, a switch to cut a transfer
short, a request log). It serves small files whose names carry their real sha256; the release's file list is
patched (``net.VISUALPRIORS_WEIGHT_FILES``) so that no real checkpoint is needed. No sleeps, no timing.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import rsa_toolkit
from rsa_toolkit.cli import weights as weights_cli
from rsa_toolkit.cli.main import build_parser, main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.taskonomy import fetch, net
from rsa_toolkit.zoo.taskonomy.fetch import FetchProgress, fetch_weights, released_checkpoints


def _content(seed: int, size: int) -> bytes:
    return bytes((seed * 31 + i * 7 + (i >> 8)) % 256 for i in range(size))


def _name(stem: str, data: bytes) -> str:
    return f"{stem}-{hashlib.sha256(data).hexdigest()}.pth"


DEPTH = _content(1, 10_000)
NORMAL_ENC = _content(2, 7_000)
NORMAL_DEC = _content(3, 5_000)
DEPTH_NAME = _name("depth_zbuffer_encoder", DEPTH)
NORMAL_ENC_NAME = _name("normal_encoder", NORMAL_ENC)
NORMAL_DEC_NAME = _name("normal_decoder", NORMAL_DEC)
#: a release name whose served bytes are not the ones its hash promises
BAD_PROMISED = _content(4, 3_000)
BAD_NAME = _name("curvature_encoder", BAD_PROMISED)
BAD_SERVED = _content(5, 3_000)
RELEASE = (DEPTH_NAME, NORMAL_ENC_NAME, NORMAL_DEC_NAME, BAD_NAME)
REAL_RELEASE = net.VISUALPRIORS_WEIGHT_FILES  # read before the autouse fixture patches it
SERVED = {DEPTH_NAME: DEPTH, NORMAL_ENC_NAME: NORMAL_ENC, NORMAL_DEC_NAME: NORMAL_DEC, BAD_NAME: BAD_SERVED}


# --------------------------------------------------------------------------- the server


@dataclass
class Site:
    files: dict[str, bytes]
    honour_range: bool = True
    cut_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before the connection drops (once)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (file name, Range header)
    url: str = ""


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
            name = self.path.rsplit("/", 1)[-1]
            wanted = self.headers.get("Range")
            site.requests.append((name, wanted))
            if name not in site.files:
                self.send_error(404, "Not Found")
                return
            data = site.files[name]
            start = 0
            if wanted and site.honour_range:
                match = re.fullmatch(r"bytes=(\d+)-", wanted)
                assert match is not None, wanted
                start = int(match[1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = site.cut_after.pop(name, None)
            self.wfile.write(body if cut is None else body[:cut])

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site(files=dict(SERVED))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/assets/pytorch/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "VISUALPRIORS_WEIGHT_FILES", RELEASE)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: any request is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, match: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    line = err.rstrip("\n")
    assert line.startswith("rsa-toolkit: error: "), line
    assert re.search(match, line), (match, line)
    return line


# --------------------------------------------------------------------------- downloading


def test_fresh_download_is_verified_and_atomic(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "weights"  # created by the fetch
    events: list[FetchProgress] = []
    paths = fetch_weights(dest, ["depth", "normals"], base_url=site.url, progress=events.append)
    assert paths == [dest / DEPTH_NAME, dest / NORMAL_ENC_NAME]  # encoders only by default, aliases resolved
    assert (dest / DEPTH_NAME).read_bytes() == DEPTH and (dest / NORMAL_ENC_NAME).read_bytes() == NORMAL_ENC
    assert listing(dest) == sorted([DEPTH_NAME, NORMAL_ENC_NAME])  # no .part left
    assert site.requests == [(DEPTH_NAME, None), (NORMAL_ENC_NAME, None)]
    kinds = [(e.name, e.event) for e in events if e.event != "data"]
    assert kinds == [(DEPTH_NAME, "start"), (DEPTH_NAME, "done"), (NORMAL_ENC_NAME, "start"),
                     (NORMAL_ENC_NAME, "done")]
    done = [e for e in events if e.event == "done"]
    assert [(e.done, e.total, e.resumed_from) for e in done] == [(len(DEPTH), len(DEPTH), 0),
                                                                 (len(NORMAL_ENC), len(NORMAL_ENC), 0)]
    data = [e.done for e in events if e.event == "data" and e.name == DEPTH_NAME]
    assert data and data[-1] == len(DEPTH) and data == sorted(data)


def test_both_parts_and_parts_not_released(site: Site, tmp_path: Path) -> None:
    events: list[FetchProgress] = []
    paths = fetch_weights(tmp_path, ["normal", "depth"], parts=("encoder", "decoder"), base_url=site.url,
                          progress=events.append)
    assert [p.name for p in paths] == [NORMAL_ENC_NAME, NORMAL_DEC_NAME, DEPTH_NAME]
    assert (tmp_path / NORMAL_DEC_NAME).read_bytes() == NORMAL_DEC
    assert [e.name for e in events if e.event == "not_released"] == ["depth_zbuffer_decoder"]
    assert released_checkpoints(["normal", "depth"], parts=["decoder", "encoder"]) == (
        [NORMAL_DEC_NAME, NORMAL_ENC_NAME, DEPTH_NAME], ["depth_zbuffer_decoder"])


def test_all_tasks_fetches_what_was_released(site: Site, tmp_path: Path) -> None:
    events: list[FetchProgress] = []
    paths = fetch_weights(tmp_path, None, base_url=site.url, files=[NORMAL_ENC_NAME, DEPTH_NAME],
                          progress=events.append)
    assert paths == [tmp_path / DEPTH_NAME, tmp_path / NORMAL_ENC_NAME]  # in task-registry order
    missing = [e.name for e in events if e.event == "not_released"]
    assert len(missing) == 18 and "autoencoding_encoder" in missing and "normal_encoder" not in missing


def test_file_list_can_be_passed_in(site: Site, tmp_path: Path) -> None:
    paths = fetch_weights(tmp_path, "depth", base_url=site.url, files=[DEPTH_NAME])
    assert paths == [tmp_path / DEPTH_NAME]
    with pytest.raises(UserInputError, match=r"No checkpoint in the visualpriors release .* of normal"):
        fetch_weights(tmp_path, ["normal"], base_url=site.url, files=[DEPTH_NAME])
    with pytest.raises(UserInputError, match=r"release file name 'depth_encoder\.pth' does not have the form"):
        fetch_weights(tmp_path, ["depth"], base_url=site.url, files=["depth_encoder.pth"])


def test_resume_with_range(site: Site, tmp_path: Path) -> None:
    (tmp_path / f".{DEPTH_NAME}.part").write_bytes(DEPTH[:4_000])
    events: list[FetchProgress] = []
    fetch_weights(tmp_path, ["depth"], base_url=site.url, progress=events.append)
    assert site.requests == [(DEPTH_NAME, "bytes=4000-")]
    assert (tmp_path / DEPTH_NAME).read_bytes() == DEPTH
    assert listing(tmp_path) == [DEPTH_NAME]
    done = [e for e in events if e.event == "done"]
    assert [(e.done, e.resumed_from) for e in done] == [(len(DEPTH), 4_000)]


def test_resume_from_server_that_ignores_range_restarts_from_zero(site: Site, tmp_path: Path) -> None:
    site.honour_range = False
    (tmp_path / f".{DEPTH_NAME}.part").write_bytes(b"\0" * 4_000)  # even a wrong prefix is discarded
    events: list[FetchProgress] = []
    fetch_weights(tmp_path, ["depth"], base_url=site.url, progress=events.append)
    assert site.requests == [(DEPTH_NAME, "bytes=4000-")]
    assert (tmp_path / DEPTH_NAME).read_bytes() == DEPTH
    assert listing(tmp_path) == [DEPTH_NAME]
    assert [e.resumed_from for e in events if e.event == "done"] == [0]


def test_interrupted_transfer_keeps_partial_and_next_run_resumes(site: Site, tmp_path: Path) -> None:
    site.cut_after[DEPTH_NAME] = 3_000
    partial = tmp_path / f".{DEPTH_NAME}.part"
    with pytest.raises(UserInputError, match=rf"'{DEPTH_NAME}' .* stopped after 3,000 of 10,000 bytes .*"
                                             r"run the same command again to resume"):
        fetch_weights(tmp_path, ["depth"], base_url=site.url)
    assert listing(tmp_path) == [partial.name] and partial.read_bytes() == DEPTH[:3_000]
    fetch_weights(tmp_path, ["depth"], base_url=site.url)
    assert site.requests == [(DEPTH_NAME, None), (DEPTH_NAME, "bytes=3000-")]
    assert listing(tmp_path) == [DEPTH_NAME] and (tmp_path / DEPTH_NAME).read_bytes() == DEPTH


def test_complete_partial_is_installed_without_a_request(site: Site, tmp_path: Path) -> None:
    (tmp_path / f".{DEPTH_NAME}.part").write_bytes(DEPTH)
    fetch_weights(tmp_path, ["depth"], base_url=site.url)
    assert site.requests == []
    assert listing(tmp_path) == [DEPTH_NAME] and sha(tmp_path / DEPTH_NAME) == DEPTH_NAME[-68:-4]


def test_stale_partial_longer_than_file_416_restarts(site: Site, tmp_path: Path) -> None:
    (tmp_path / f".{DEPTH_NAME}.part").write_bytes(b"x" * 12_000)
    fetch_weights(tmp_path, ["depth"], base_url=site.url)
    assert site.requests == [(DEPTH_NAME, "bytes=12000-"), (DEPTH_NAME, None)]
    assert listing(tmp_path) == [DEPTH_NAME] and (tmp_path / DEPTH_NAME).read_bytes() == DEPTH


@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
def test_hash_mismatch_deletes_partial_and_names_hashes(site: Site, tmp_path: Path, resumed: bool) -> None:
    if resumed:  # a corrupt prefix from an earlier run, completed by a range request
        site.files[DEPTH_NAME] = DEPTH
        (tmp_path / f".{DEPTH_NAME}.part").write_bytes(b"\0" * 4_000)
        name, got = DEPTH_NAME, hashlib.sha256(b"\0" * 4_000 + DEPTH[4_000:]).hexdigest()
        task = "depth"
    else:
        name, got, task = BAD_NAME, hashlib.sha256(BAD_SERVED).hexdigest(), "curvature"
    expected = name[-68:-4]
    with pytest.raises(UserInputError) as info:
        fetch_weights(tmp_path, [task], base_url=site.url)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(rf"'{name}' .* fails its hash check: expected sha256 {expected} .* got {got}; the partial "
                     r"file was deleted", message), message
    assert listing(tmp_path) == []


def test_already_present_is_skipped_without_contacting_anyone(tmp_path: Path, closed_port_url: str) -> None:
    (tmp_path / DEPTH_NAME).write_bytes(DEPTH)
    events: list[FetchProgress] = []
    assert fetch_weights(tmp_path, ["depth"], base_url=closed_port_url, progress=events.append) == [
        tmp_path / DEPTH_NAME]
    assert [(e.name, e.event) for e in events] == [(DEPTH_NAME, "present")]


def test_damaged_file_under_final_name_is_replaced(site: Site, tmp_path: Path) -> None:
    (tmp_path / DEPTH_NAME).write_bytes(DEPTH[:-1] + b"!")
    fetch_weights(tmp_path, ["depth"], base_url=site.url)
    assert site.requests == [(DEPTH_NAME, None)]
    assert (tmp_path / DEPTH_NAME).read_bytes() == DEPTH and listing(tmp_path) == [DEPTH_NAME]


def test_bad_arguments_fail_before_any_request(site: Site, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"Unknown task 'dpeth'\. Did you mean 'depth_zbuffer'"):
        fetch_weights(tmp_path, ["normal", "dpeth"], base_url=site.url)
    with pytest.raises(UserInputError, match=r"parts must be one or both of encoder, decoder, got 'head'"):
        fetch_weights(tmp_path, ["normal"], parts=["head"], base_url=site.url)
    with pytest.raises(UserInputError, match=r"base URL must be an http:// or https:// URL .* got 'ftp://x/'"):
        fetch_weights(tmp_path, ["normal"], base_url="ftp://x/")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserInputError, match=r"destination '.*file' exists and is not a folder"):
        fetch_weights(tmp_path / "file", ["normal"], base_url=site.url)
    with pytest.raises(UserInputError, match=r"cannot create destination .*: its parent folder .* does not exist"):
        fetch_weights(tmp_path / "no" / "such", ["normal"], base_url=site.url)
    with pytest.raises(UserInputError, match=r"No checkpoint .* requested part \(decoder\) of depth_zbuffer "
                                             r"\(released: encoder\)"):
        fetch_weights(tmp_path, ["depth"], parts=["decoder"], base_url=site.url)
    assert site.requests == [] and listing(tmp_path) == ["file"]


def test_files_fetched_before_an_error_stay_complete(site: Site, tmp_path: Path) -> None:
    del site.files[NORMAL_ENC_NAME]
    with pytest.raises(UserInputError, match=r"HTTP 404"):
        fetch_weights(tmp_path, ["depth", "normal"], base_url=site.url)
    assert listing(tmp_path) == [DEPTH_NAME] and (tmp_path / DEPTH_NAME).read_bytes() == DEPTH


# --------------------------------------------------------------------------- command line, in-process


def test_cli_fetch_prints_progress_and_next_command(site: Site, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "tk"
    (tmp_path / "tk").mkdir()
    (dest / NORMAL_ENC_NAME).write_bytes(NORMAL_ENC)
    code, out, err = run(capsys, "weights", "fetch", "--tasks", "depth", "normal", "--dest", dest, "--parts",
                         "encoder", "decoder", "--base-url", site.url)
    assert code == 0, err
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "depth_zbuffer: visualpriors released no decoder; skipped"
    assert re.fullmatch(rf"{DEPTH_NAME}: 10\.0 KB \(fetched 10\.0 KB at [^)]+\), sha256 ok", lines[1]), lines[1]
    assert lines[2] == f"{NORMAL_ENC_NAME}: already present (sha256 ok)"
    assert re.fullmatch(rf"{NORMAL_DEC_NAME}: 5\.0 KB .*sha256 ok", lines[3]), lines[3]
    assert lines[4] == (f"3 checkpoint files in {dest} (2 downloaded, 1 already present); next: rsa-toolkit matrix "
                        f"--weights-dir {dest} --images PROBE_DIR --out sim.png")
    assert len(lines) == 5
    assert listing(dest) == sorted([DEPTH_NAME, NORMAL_ENC_NAME, NORMAL_DEC_NAME])


def test_cli_resume_line_and_quiet(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / f".{DEPTH_NAME}.part").write_bytes(DEPTH[:4_000])
    code, _, err = run(capsys, "weights", "fetch", "--tasks", "depth", "--dest", tmp_path, "--base-url", site.url)
    assert code == 0, err
    assert err.splitlines()[0] == f"{DEPTH_NAME}: resuming at 4.0 KB"
    assert "4.0 KB from an earlier run" in err.splitlines()[1]
    code, out, err = run(capsys, "weights", "fetch", "--tasks", "depth", "normal", "--dest", tmp_path / "q",
                         "--base-url", site.url, "--quiet")
    assert (code, out, err) == (0, "", "")
    assert listing(tmp_path / "q") == sorted([DEPTH_NAME, NORMAL_ENC_NAME])


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream = io.StringIO()
    display = weights_cli._Progress(stream, quiet=False, live=True)
    display(FetchProgress("a.pth", "start", 0, 2_000_000, 0))
    display(FetchProgress("a.pth", "data", 1_000_000, 2_000_000, 0))
    display(FetchProgress("a.pth", "done", 2_000_000, 2_000_000, 0))
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and lines[-2].startswith("\ra.pth: 2.0 MB (fetched 2.0 MB at ")
    assert lines[-2].endswith("sha256 ok\x1b[K") and display.fetched == 1
    display.live = False
    display(FetchProgress("b.pth", "done", 5_000, 5_000, 5_000))  # a complete partial file, installed
    assert stream.getvalue().endswith("b.pth: 5.0 KB (all from an earlier run), sha256 ok\n")
    quiet = io.StringIO()
    weights_cli._Progress(quiet, quiet=True, live=False)(FetchProgress("a.pth", "present"))
    assert quiet.getvalue() == ""


def test_cli_http_404_is_one_line_and_leaves_nothing(site: Site, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    site.files.clear()
    dest = tmp_path / "new"
    code, out, err = run(capsys, "weights", "fetch", "--tasks", "depth", "--dest", dest, "--base-url", site.url)
    assert_one_line_error(code, err, rf"Downloading '{DEPTH_NAME}' failed: HTTP 404 Not Found from "
                                     rf"{re.escape(site.url)}{DEPTH_NAME}; check --base-url")
    assert out == "" and not dest.exists()  # the folder it created is removed again


def test_cli_connection_refused_is_one_line(tmp_path: Path, closed_port_url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "weights", "fetch", "--tasks", "normal", "--dest", tmp_path, "--base-url",
                       closed_port_url)
    assert_one_line_error(code, err, r"cannot reach http://127\.0\.0\.1:\d+/normal_encoder-.*Connection refused")
    assert listing(tmp_path) == []


def test_cli_unknown_task_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "weights", "fetch", "--tasks", "normal", "surface_normls", "--dest", tmp_path)
    assert_one_line_error(code, err, r"Unknown task 'surface_normls'\. Did you mean 'normal'")
    assert listing(tmp_path) == []


def test_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights"]) == 0
    assert "fetch" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["weights", "fetch", "--tasks", "depth"])  # --dest is required
    assert info.value.code == 2
    assert "--dest" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["weights", "fetch", "--tasks", "depth", "--dest", "x", "--parts", "head"])
    capsys.readouterr()


def test_cli_defaults_match_the_library() -> None:
    def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return action.choices[name]

    fetch_parser = subcommand(subcommand(build_parser(), "weights"), "fetch")
    args = fetch_parser.parse_args(["--tasks", "depth", "--dest", "d"])
    assert args.parts == ["encoder"] and args.timeout == fetch.DEFAULT_TIMEOUT and args.base_url is None
    assert weights_cli._PARTS == fetch.FETCH_PARTS
    assert fetch.VISUALPRIORS_BASE_URL in re.sub(r"\s", "", fetch_parser.format_help())
    assert fetch.VISUALPRIORS_BASE_URL == "https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/"


# --------------------------------------------------------------------------- command line, subprocess


def test_subprocess_hash_mismatch_exit_2_nothing_left(site: Site, tmp_path: Path) -> None:
    """The real console entry point and the real release list: a server that serves wrong bytes for a real name."""
    real = [n for n in REAL_RELEASE if n.startswith("normal_encoder-")]
    assert len(real) == 1
    site.files = {real[0]: b"not the checkpoint"}
    dest = tmp_path / "tk"
    result = subprocess.run([sys.executable, "-m", "rsa_toolkit", "weights", "fetch", "--tasks", "normals", "--dest",
                             str(dest), "--base-url", site.url], capture_output=True, text=True, timeout=120)
    assert_one_line_error(result.returncode, result.stderr,
                          rf"'{real[0]}' .* fails its hash check: expected sha256 {real[0][-68:-4]} .* got "
                          rf"{hashlib.sha256(b'not the checkpoint').hexdigest()}; the partial file was deleted")
    assert result.stdout == "" and not dest.exists()
    assert site.requests == [(real[0], None)]


# --------------------------------------------------------------------------- nothing else downloads


def test_no_other_module_can_download() -> None:
    """fetch.py is the only product module that imports a network client."""
    network = {"urllib.request", "http.client", "socket", "requests", "httpx", "urllib3", "aiohttp", "ftplib"}
    root = Path(rsa_toolkit.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{a.name}" for a in node.names)
        hits = sorted(m for m in imported if m in network or m.split(".")[0] in network - {"urllib"})
        if hits and path.relative_to(root).as_posix() != "zoo/taskonomy/fetch.py":
            offenders.append(f"{path.relative_to(root)}: {', '.join(hits)}")
    assert offenders == []
