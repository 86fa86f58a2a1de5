"""tokens.inputs: where unstorable text is, and writing out text that was never checked."""

import json

import pytest

from tokens.inputs import encodable_json, is_storable_text, scrub_json, unstorable_text_at


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("ok", None),
        ("a\x00b", ()),
        ("\ud800", ()),
        ("\U0001f600", None),  # an astral character is one character, not a surrogate pair
        ({"a": [1, "x", {"b": "\udfff"}]}, ("a", 2, "b")),
        ({"a": 1, "b\x00": 2}, ()),  # a bad key: the path ends at its object
        ({"a": {"\ud800": 1}}, ("a",)),
        ([{"a": "ok"}, {"a": "ok", "b": ["\x00"]}, "\x00"], (1, "b", 0)),  # the first one
        ({"n": 1.5, "t": True, "z": None}, None),
    ],
)
def test_unstorable_text_at(value, path):
    assert unstorable_text_at(value) == path


def test_deep_nesting_does_not_exhaust_the_stack():
    value = "\x00"
    for _ in range(5000):
        value = [value]
    assert unstorable_text_at(value) == (0,) * 5000


def test_json_decoded_pairs_are_storable_and_lone_halves_are_not():
    assert is_storable_text(json.loads('"\\ud83d\\ude00"'))
    assert not is_storable_text(json.loads('"\\ud83d"'))


def test_scrub_and_encodable_json():
    value = {"a\ud800": ["x\x00y", 1, None], "ok": "é"}
    assert scrub_json(value) == {"a\ufffd": ["x\ufffdy", 1, None], "ok": "é"}
    text = encodable_json(value)
    assert json.loads(text.encode("utf-8")) == scrub_json(value)
    assert encodable_json({"ok": "é\x00"}) == '{"ok":"é\\u0000"}'  # NUL is valid JSON output
