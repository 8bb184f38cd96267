"""A broken meter profile is refused with a ProfileError naming the file, the key and the
problem, whatever is wrong with it: never another exception (which would stop ``serve``).

Each case is a real file on disk, read by ``load_profile_file`` as the station reads it.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path

import pytest

from app.drivers.profile import PROFILE_DIR, ProfileError, load_profile, load_profile_file

DDSY = PROFILE_DIR / "acrel-ddsy1352.toml"
SDM = PROFILE_DIR / "eastron-sdm120.toml"


def _refused(path: Path, key: str, problem: str) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    err = caught.value
    assert str(err).startswith(f"{path}: "), str(err)
    assert key in err.key, (err.key, str(err))
    assert problem in err.problem, (err.problem, str(err))
    return err


def _write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _ddsy_text() -> str:
    return DDSY.read_text(encoding="utf-8")


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- the kinds of mistakes the issue names -------------------------------------------------------
def test_wrong_types_name_the_key(tmp_path):
    text = _replace(_ddsy_text(), 'max = "30000"', "max = [1, 2]")
    _refused(_write(tmp_path, text), ".max", "decimal string")
    text = _replace(_ddsy_text(), "max_registers = 48", 'max_registers = "48"')
    _refused(_write(tmp_path, text), "reading.max_registers", "must be an integer")
    text = _replace(_ddsy_text(), 'model = "DDSY1352"', "model = 1352")
    _refused(_write(tmp_path, text), "meter.model", "must be a string")


def test_min_above_max(tmp_path):
    text = _replace(_ddsy_text(), 'min = "0"\nmax = "30000"', 'min = "30001"\nmax = "30000"')
    _refused(_write(tmp_path, text), ".min", "is above max 30000")


@pytest.mark.parametrize("content", [
    bytes(range(256)) * 4,  # a binary file (not UTF-8)
    b"\x89PNG\r\n\x1a\n" + os.urandom(64),  # an image saved under a profile's name
    "[meter]\nmodel = \"x\"\n".encode("utf-16"),  # a text editor's 'Unicode'
], ids=["bytes", "png", "utf16"])
def test_a_binary_file_is_refused_as_not_a_profile(tmp_path, content):
    path = tmp_path / "binary.toml"
    path.write_bytes(content)
    _refused(path, "(file)", "not a text file in UTF-8")


def test_nul_bytes_are_refused(tmp_path):
    path = tmp_path / "nul.toml"
    path.write_bytes(DDSY.read_bytes() + b"\x00\x00\x00")
    _refused(path, "(file)", "NUL bytes")


def test_a_control_named_twice_names_the_control(tmp_path):
    twice_as_key = _replace(_ddsy_text(), "[controls]\n",
                            '[controls]\ntrip = { point = "control_mode", state = "auto" }\n')
    err = _refused(_write(tmp_path, twice_as_key), "controls.trip", "Cannot overwrite a value")
    assert "line" in err.problem  # where in the file
    as_table = _ddsy_text() + '\n[controls.trip]\npoint = "control_mode"\n'
    _refused(_write(tmp_path, as_table), "controls.trip", "twice")


def test_a_bit_field_named_twice_is_refused(tmp_path):
    text = _replace(_ddsy_text(), "bits = { restore_delay_min = [8, 8] }",
                    "bits = { restore_delay_min = [8, 8], relay_closed = 0 }")
    _refused(_write(tmp_path, text), "relay_closed", "used twice")


def test_unknown_and_missing_keys(tmp_path):
    text = _replace(_ddsy_text(), "max_registers = 48", "max_registers = 48\nmax_regsiters = 4")
    _refused(_write(tmp_path, text), "reading.max_regsiters", "unknown key")
    text = _replace(_ddsy_text(), '[meter]\nmodel = "DDSY1352"\n', "[meter]\n")
    _refused(_write(tmp_path, text), "meter.model", "is required")
    _refused(_write(tmp_path, ""), "meter", "required")


# -- tables where a value is expected, a value where a table is --------------------------------
def test_controls_that_are_not_a_table(tmp_path):
    text = 'controls = "trip"\n' + SDM.read_text(encoding="utf-8")  # a top-level key
    _refused(_write(tmp_path, text), "controls", "must be a table")


def test_voltkeeper_points_that_are_not_a_table(tmp_path):
    text = SDM.read_text(encoding="utf-8") + '\n[voltkeeper]\npoints = ["token"]\n'
    _refused(_write(tmp_path, text), "voltkeeper.points", "must be a table")


def test_a_control_mode_that_is_a_bit_field(tmp_path):
    """The controls write a mode word of another name; ``control_mode`` is only a bit."""
    text = _ddsy_text().replace('point = "control_mode"', 'point = "mode_word"')
    text = _replace(text, "[points.control_mode]", "[points.mode_word]")
    text = _replace(text, "bits = { restore_delay_min = [8, 8] }",
                    "bits = { restore_delay_min = [8, 8], control_mode = 0 }")
    _refused(_write(tmp_path, text), "points.control_mode", "not a bit field")


def test_a_file_that_cannot_be_read(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    _refused(folder, "(file)", "cannot be read")


def test_a_profile_named_by_its_path(tmp_path):
    """A station's own meter model, kept outside the program, named by its file."""
    good = _write(tmp_path, SDM.read_text(encoding="utf-8"), "site-meter.toml")
    assert load_profile(str(good)).model == "SDM120"
    bad = _write(tmp_path, _ddsy_text() + "\n[controls.trip]\n", "site-broken.toml")
    with pytest.raises(ProfileError) as caught:
        load_profile(str(bad))
    assert caught.value.path == str(bad)


# -- every key, every wrong type: a ProfileError, never anything else ----------------------------
WRONG = ["text", 7, -1, 0, 70_000, 1.5, float("nan"), True, [], [1, "a"], [[1]], {}, {"x": 1},
         {"point": "x"}]


def _key_paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _key_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _key_paths(v, (*prefix, i))


@pytest.mark.parametrize("shipped", [DDSY, SDM], ids=lambda p: p.stem)
def test_any_value_of_any_type_anywhere_is_a_profile_error(shipped):
    from app.drivers.profile import parse_profile

    base = tomllib.loads(shipped.read_text(encoding="utf-8"))
    tried = 0
    for key in list(_key_paths(base)):
        for value in [*WRONG, None]:
            data = copy.deepcopy(base)
            table = data
            for k in key[:-1]:
                table = table[k]
            if value is None:  # the key left out
                if not isinstance(table, dict):
                    continue
                del table[key[-1]]
            else:
                table[key[-1]] = value
            tried += 1
            try:
                parse_profile(data, "x.toml", "x")
            except ProfileError:
                pass
            except Exception as exc:  # the point of the test
                pytest.fail(f"{'.'.join(map(str, key))} = {value!r}: {type(exc).__name__}: "
                            f"{exc}")
    assert tried > 500
