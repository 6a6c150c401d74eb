"""Share codes round-trip to list ids, forgive case, dashes and look-alike letters, and catch typos."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_service.share_code import ShareCodeError, list_id_of, share_code

list_ids = st.binary(min_size=16, max_size=16).map(bytes.hex)


@given(list_ids)
def test_a_share_code_names_exactly_its_list(list_id: str) -> None:
    assert list_id_of(share_code(list_id)) == list_id


def test_a_share_code_is_grouped_for_people() -> None:
    code = share_code("00000000000000000000000000000000")
    assert code == "SL-0000-0000-0000-0000-0000-0000-0000"


@given(list_ids)
def test_case_spaces_and_lookalike_letters_are_forgiven(list_id: str) -> None:
    code = share_code(list_id)
    sloppy = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert list_id_of(sloppy) == list_id


@given(list_ids, st.integers(3, 36), st.sampled_from("0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
def test_a_single_mistyped_character_is_caught(list_id: str, position: int, replacement: str) -> None:
    code = share_code(list_id)
    if code[position] in "-" or code[position] == replacement:
        return
    mistyped = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(ShareCodeError):
        list_id_of(mistyped)


@pytest.mark.parametrize("text", ["", "SL-1234", "hello world", "SL-" + "!" * 28, "SL-" + "Z" * 28])
def test_garbage_is_a_clear_error(text: str) -> None:
    with pytest.raises(ShareCodeError):
        list_id_of(text)


def test_only_random_list_ids_can_be_shared() -> None:
    with pytest.raises(ShareCodeError):
        share_code("Groceries")
    assert len(share_code(secrets.token_hex(16))) == len("SL-") + 28 + 6
