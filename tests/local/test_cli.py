"""The magpie command: demo and faces, as a user runs them."""

from __future__ import annotations

import io

import pytest
from magpie.cli import main
from magpie.demo import run_demo

from chalicelib import backend
from tests.conftest import ROOT

KNOWN = ROOT / "examples" / "known-faces" / "eileen-collins.jpg"


@pytest.mark.slow
def test_demo_runs_every_sample_and_reports_what_each_produced(tmp_path, monkeypatch):
    monkeypatch.delenv("TWITTER_API_SECRET", raising=False)
    out = io.StringIO()
    assert run_demo(tmp_path / "demo", out=out) == 0
    text = out.getvalue()
    for sample in sorted((ROOT / "examples" / "webhooks").glob("*.json")):
        assert f"== {sample.name}: HTTP 200" in text
    assert "known: Eileen Collins" in text
    assert "media rejected (host_not_allowed)" in text  # DM media needs OAuth: not fetched
    assert "ALERT [NEGATIVE_MESSAGE] @sample_user_ana" in text
    assert "0 dead letters" in text
    backend.reset()


def test_faces_add_list_remove(local_env, capsys):
    home = str(local_env)
    assert main(["--home", home, "faces", "add", "Eileen Collins", str(KNOWN)]) == 0
    assert main(["--home", home, "faces", "list"]) == 0
    assert "Eileen Collins" in capsys.readouterr().out
    assert main(["--home", home, "faces", "remove", "Eileen Collins"]) == 0
    assert main(["--home", home, "faces", "list"]) == 0
    assert "Eileen Collins" not in capsys.readouterr().out.replace("removed", "")


def test_faces_add_refuses_a_photo_without_a_face(local_env, tmp_path, capsys):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    assert main(["--home", str(local_env), "faces", "add", "Nobody", str(blank)]) == 2
    assert "no face" in capsys.readouterr().err
