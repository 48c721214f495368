"""The JSONC reader and merger (comments and trailing commas kept), and user.vscode's file handling."""

from __future__ import annotations

import json

import pytest

from npuenv.errors import UsageError
from npuenv.users.add import add_user
from npuenv.users.files import BACKUP_SUFFIX
from npuenv.errors import IsolationError
from npuenv.users.jsonc import loads, parse, set_in
from npuenv.users.vscode import (DEFAULT_PROFILE_KEY, PROFILES_KEY, install_vscode_profile, merge_terminal_profile,
                                 snippet)
from npuenv.errors import JsoncError

PROFILE, PATH = "zsh (alice)", "/home/ma-user/work/alice/init.sh"

# What a real workspace settings.json looks like after a few months: comments of both kinds, trailing
# commas, nested objects, a profile of someone's own.
SETTINGS = """\
// Workspace settings for the InternVL fine-tune
{
    "editor.rulers": [100, 120,],  // two rulers
    /* the team's formatter,
       keep it */
    "python.formatting.provider": "black",
    "files.exclude": {
        "**/.git": true,
        "**/__pycache__": true, // noisy
    },
    "terminal.integrated.profiles.linux": {
        "bash": {
            "path": "bash",
            "icon": "terminal-bash",
        },
    },
    "terminal.integrated.defaultProfile.linux": "bash", // was bash
}
"""


def merged(text: str) -> dict:
    return loads(merge_terminal_profile(text, PROFILE, PATH))


def expect_profile(data: dict) -> None:
    assert data[PROFILES_KEY][PROFILE] == {"path": PATH}
    assert data[DEFAULT_PROFILE_KEY] == PROFILE


# --- reading --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e\\"f\\u00e9"}, "n": -1.5e3}', "[]", '"x"', "0",
    '{"nested": {"deep": [{"x": [1, {"y": {}}]}]}}',
])
def test_plain_json_reads_like_json(text):
    assert loads(text) == json.loads(text)


def test_comments_and_trailing_commas_are_read():
    data = loads(SETTINGS)
    assert data["editor.rulers"] == [100, 120]
    assert data["files.exclude"] == {"**/.git": True, "**/__pycache__": True}
    assert data[DEFAULT_PROFILE_KEY] == "bash"
    assert loads("// nothing but a comment\n/* and another */\n") is None
    assert loads('{"url": "http://x//y", "c": "/* not a comment */"}') == {"url": "http://x//y",
                                                                         "c": "/* not a comment */"}


def test_positions_point_at_the_text():
    text = '{\n  "a": [1, 2],\n  "b": "x"\n}'
    root = parse(text)
    a, b = root.members
    assert text[a.key_start:a.key_start + 3] == '"a"' and text[a.value.start:a.value.end] == "[1, 2]"
    assert text[b.value.start:b.value.end] == '"x"' and a.comma == text.index(",\n")


@pytest.mark.parametrize("text, line, column, words", [
    ('{"a": 1 "b": 2}', 1, 9, "expected ',' or '}'"),
    ('{\n  "a": "x\n}', 2, 10, "line break inside a string"),
    ('{\n  "a": [1, 2\n}', 3, 1, "expected ',' or ']'"),
    ("{\n  /* never closed", 2, 3, "unterminated /* comment"),
    ('{"a": 1}}', 1, 9, "after the end"),
    ("{\n    editor: 1\n}", 2, 5, "expected a quoted key"),
    ('{"a" 1}', 1, 6, "expected ':'"),
    ('{"a": tru}', 1, 7, "expected a value"),
    ('{"a": 1,', 1, 9, "unexpected end of the file"),
    ('{"a": "\\q"}', 1, 7, "invalid string"),
])
def test_errors_name_line_and_column(text, line, column, words):
    with pytest.raises(JsoncError) as info:
        parse(text, source="settings.json")
    error = info.value
    assert (error.line, error.column) == (line, column) and words in error.problem
    assert error.message.startswith(f"settings.json:{line}:{column}: ") and "move it aside" in error.hint


# --- merging --------------------------------------------------------------------------------------------

def test_merge_keeps_comments_trailing_commas_and_other_keys():
    out = merge_terminal_profile(SETTINGS, PROFILE, PATH)
    data = loads(out)
    expect_profile(data)
    old = loads(SETTINGS)
    assert data[PROFILES_KEY]["bash"] == old[PROFILES_KEY]["bash"]
    assert {k: v for k, v in data.items() if k not in (PROFILES_KEY, DEFAULT_PROFILE_KEY)} == \
        {k: v for k, v in old.items() if k not in (PROFILES_KEY, DEFAULT_PROFILE_KEY)}
    for kept in ("// Workspace settings", "// two rulers", "/* the team's formatter,\n       keep it */",
                 "// noisy", "// was bash", "[100, 120,]", '"icon": "terminal-bash",\n        },'):
        assert kept in out
    # byte for byte: one profile added (with the file's trailing comma), the default's value replaced
    expected = SETTINGS.replace(
        '            "icon": "terminal-bash",\n        },\n',
        f'            "icon": "terminal-bash",\n        }},\n'
        f'        "{PROFILE}": {{\n            "path": "{PATH}"\n        }},\n',
    ).replace('defaultProfile.linux": "bash", // was bash', f'defaultProfile.linux": "{PROFILE}", // was bash')
    assert out == expected
    assert merge_terminal_profile(out, PROFILE, PATH) == out  # a second merge changes nothing


def test_merge_updates_the_path_and_keeps_the_profiles_other_fields():
    text = ('{\n  "terminal.integrated.profiles.linux": {\n    "zsh (alice)": {"path": "/old/init.sh", '
            '"icon": "person"}\n  },\n  "terminal.integrated.defaultProfile.linux": "zsh (alice)"\n}\n')
    out = merge_terminal_profile(text, PROFILE, PATH)
    assert loads(out)[PROFILES_KEY][PROFILE] == {"path": PATH, "icon": "person"}
    assert out == text.replace("/old/init.sh", PATH)


@pytest.mark.parametrize("text", [
    "", "\n", "// my settings\n", "{}", "{ }", "{\n}\n", "{\n    // nothing yet\n}\n", '{"a": 1}',
    '{"a": 1,}', '{\n  "a": 1 // one\n}', '{\n\t"a": {\n\t\t"b": 2,\n\t},\n}\n',
])
def test_merge_into_small_and_odd_files(text):
    out = merge_terminal_profile(text, PROFILE, PATH)
    data = loads(out)
    expect_profile(data)
    if text.strip() and loads(text):
        assert {k: v for k, v in data.items() if k.startswith(("a", "b"))} == loads(text)
    for comment in ("// my settings", "// nothing yet", "// one"):
        assert (comment in out) == (comment in text)
    assert merge_terminal_profile(out, PROFILE, PATH) == out


def test_merge_keeps_tabs_and_crlf():
    text = '{\r\n\t"editor.tabSize": 4,\r\n}\r\n'
    out = merge_terminal_profile(text, PROFILE, PATH)
    assert out.startswith('{\r\n\t"editor.tabSize": 4,\r\n\t"terminal.integrated.profiles.linux": {\r\n\t\t')
    assert "\n" not in out.replace("\r\n", "")
    expect_profile(loads(out))


def test_a_repeated_key_is_edited_where_it_counts():
    text = '{\n  "terminal.integrated.defaultProfile.linux": "a",\n  "terminal.integrated.defaultProfile.linux": "b"\n}'
    out = set_in(text, [DEFAULT_PROFILE_KEY], PROFILE)
    assert out == text.replace('"b"', json.dumps(PROFILE))  # the last one is what VS Code reads


def test_a_setting_of_the_wrong_kind_is_refused_with_its_position():
    text = '{\n  "terminal.integrated.profiles.linux": [1, 2]\n}'
    with pytest.raises(JsoncError) as info:
        merge_terminal_profile(text, PROFILE, PATH, source="s.json")
    assert info.value.message.startswith("s.json:2:41: ") and "is a list, expected an object" in info.value.message
    with pytest.raises(JsoncError, match="the top level is a list"):
        merge_terminal_profile("[]", PROFILE, PATH)


def test_snippet_pastes_into_an_object():
    text = "{\n" + snippet(PROFILE, PATH) + "\n}"
    expect_profile(loads(text))


# --- user.vscode: the file -------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path):
    root = tmp_path / "work dir"
    root.mkdir()
    add_user(root, "alice", shell="zsh", environ={})
    add_user(root, "bob", shell="bash", environ={})
    (root / "alice" / "proj").mkdir()
    return root / "alice"


def test_user_vscode_creates_then_merges_with_a_backup(home):
    root, settings = home.parent, home / "proj" / ".vscode" / "settings.json"
    first = install_vscode_profile(root, "alice", home / "proj")
    assert first.state == "created" and first.backup is None and first.settings == settings
    init = str(home / "init.sh")
    assert loads(settings.read_text()) == {PROFILES_KEY: {"zsh (alice)": {"path": init}},
                                           DEFAULT_PROFILE_KEY: "zsh (alice)"}
    settings.write_text(SETTINGS)
    settings.chmod(0o600)
    second = install_vscode_profile(root, "alice", home / "proj")
    assert second.state == "updated" and second.backup == settings.with_name("settings.json" + BACKUP_SUFFIX)
    assert second.backup.read_text() == SETTINGS
    assert settings.read_text() == merge_terminal_profile(SETTINGS, "zsh (alice)", init)
    assert settings.stat().st_mode & 0o777 == 0o600
    third = install_vscode_profile(root, "alice", home / "proj")
    assert third.state == "unchanged" and second.backup.read_text() == SETTINGS


def test_user_vscode_names_the_profile_after_the_shell(home):
    root = home.parent
    (root / "bob" / "proj").mkdir()
    result = install_vscode_profile(root, "bob", root / "bob" / "proj")
    assert result.profile == "bash (bob)"
    assert loads(result.settings.read_text())[PROFILES_KEY]["bash (bob)"]["path"] == str(root / "bob" / "init.sh")


def test_user_vscode_keeps_a_byte_order_mark(home):
    settings = home / "proj" / ".vscode" / "settings.json"
    settings.parent.mkdir()
    settings.write_bytes('\ufeff{\n    "a": 1,\n}\n'.encode())
    install_vscode_profile(home.parent, "alice", home / "proj")
    text = settings.read_bytes().decode()
    assert text.startswith('\ufeff{\n    "a": 1,\n') and loads(text[1:])["a"] == 1


def test_user_vscode_never_overwrites_a_file_it_cannot_parse(home):
    settings = home / "proj" / ".vscode" / "settings.json"
    settings.parent.mkdir()
    broken = '{\n    "a": 1,\n    "b": [1, 2\n    "c": 3\n}\n'
    settings.write_text(broken)
    with pytest.raises(JsoncError) as info:
        install_vscode_profile(home.parent, "alice", home / "proj")
    assert info.value.message.startswith(f"{settings}:4:5: expected ',' or ']'")
    assert settings.read_text() == broken
    assert sorted(p.name for p in settings.parent.iterdir()) == ["settings.json"]  # no backup, no temp file


def test_user_vscode_refuses_folders_outside_the_persons(home, tmp_path):
    root = home.parent
    (root / "bob" / "proj").mkdir()
    (root / "team-repo").mkdir()
    for folder in (root / "bob" / "proj", root / "team-repo", tmp_path, root):
        with pytest.raises(UsageError, match="not inside") as info:
            install_vscode_profile(root, "alice", folder)
        assert "everyone's terminals" in info.value.message
        assert not (folder / ".vscode").exists()
    with pytest.raises(UsageError, match="not a folder"):
        install_vscode_profile(root, "alice", home / "missing")
    with pytest.raises(IsolationError, match="no user 'carol'"):
        install_vscode_profile(root, "carol", home / "proj")
