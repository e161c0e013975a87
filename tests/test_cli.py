"""Every command's bad input ends as one typed line, `error [code]: message`, with exit status 2: never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefx.cli import main


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    return path


def cases(tmp: Path, a_file: Path) -> list[tuple[list[str], str]]:
    missing = str(tmp / "missing.jpg")
    folder = str(tmp)
    unwritable = str(a_file / "out")  # a folder inside a file cannot be made, even by root
    return [
        (["verify", missing, missing], "cannot_read"),
        (["verify", folder, folder], "cannot_read"),
        (["verify", str(a_file), str(a_file), "--explain", "--out", unwritable], "cannot_write"),
        (["verify", missing, missing, "--threads", "0"], "bad_argument"),
        (["verify", missing], "bad_argument"),
        (["verify", missing, missing, "--recognizer", "facenet"], "bad_argument"),
        (["ask", missing, missing, "-q", "is it a match?"], "cannot_read"),
        (["ask", folder, folder], "cannot_read"),
        (["detect", missing], "cannot_read"),
        (["detect", folder], "cannot_read"),
        (["detect", missing, "--repeat", "-1"], "bad_argument"),
        (["detect", missing, "--min-face-size", "zero"], "bad_argument"),
        (["serve", "--port", "abc"], "bad_argument"),
        (["serve", "--workers", "0"], "bad_argument"),
        (["models", "--models-dir", str(tmp / "nowhere")], "model_missing"),
        (["selfcheck", "--threads", "-2"], "bad_argument"),
        (["eval", "lfw", "--root", str(tmp / "nowhere")], "bad_argument"),
        (["eval", "lfw", "--pairs", folder], "bad_argument"),
        (["eval", "saliency", "--n", "many"], "bad_argument"),
        (["eval", "qa", "--questions", missing], "bad_argument"),
        (["eval", "qa", "--threads", "0"], "bad_argument"),
        (["bench", "verify", "--pairs", "0"], "bad_argument"),
        (["bench", "verify", "--lfw", str(a_file)], "bad_argument"),
        (["bench", "explain", "--n", "1.5"], "bad_argument"),
        (["bench", "qa", "--repeats", "0"], "bad_argument"),
        (["bench", "serve", "--clients", "1,x"], "bad_argument"),
        (["bench", "backends", "--threads", "none"], "bad_argument"),
        (["enroll", missing], "bad_argument"),
        (["enroll", "--id", "has space", missing], "invalid_request"),
        (["enroll", "--id", "alice", missing], "cannot_read"),
        (["enroll", "--id", "alice", "--db", folder, folder], "cannot_read"),
        (["identify", missing], "cannot_read"),
        (["identify", missing, "--top", "0"], "bad_argument"),
        (["identify", str(a_file), "--explain", "--out", unwritable], "cannot_write"),
        (["verify-id", "alice"], "bad_argument"),
        (["verify-id", "bad id", missing], "invalid_request"),
        (["verify-id", "alice", missing], "cannot_read"),
        (["subjects"], "bad_argument"),
        (["subjects", "remove"], "bad_argument"),
        (["subjects", "remove", "../etc"], "invalid_request"),
        (["subjects", "list", "--threads", "0"], "bad_argument"),
        (["audit"], "bad_argument"),
        (["audit", "verify", "--threads", "x"], "bad_argument"),
        (["eval", "lfw-identify", "--recognizers", "facenet"], "bad_argument"),
        (["eval", "lfw-identify", "--root", str(tmp / "nowhere")], "bad_argument"),
        (["bench", "identify", "--sizes", "10,zero"], "bad_argument"),
        (["no-such-command"], "bad_argument"),
        ([], "bad_argument"),
    ]


def test_every_command_reports_bad_input_as_one_typed_line(tmp_path: Path, a_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    failures = []
    for argv, code in cases(tmp_path, a_file):
        status = main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        if status != 2 or len(lines) != 1 or not lines[0].startswith(f"error [{code}]: ") or "Traceback" in err:
            failures.append((argv, status, err))
    assert not failures, failures


def test_a_bad_environment_variable_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EDGEFX_THREADS", "lots")
    assert main(["selfcheck"]) == 2
    assert capsys.readouterr().err.startswith("error [bad_argument]: EDGEFX_THREADS='lots'")
