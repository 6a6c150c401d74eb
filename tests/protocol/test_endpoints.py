"""Endpoint strings that pin a CurveZMQ server key: parsing, rejection of bad queries, round trips."""

from __future__ import annotations

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from protocol.endpoints import Z85_ALPHABET, address_of, is_key, split_endpoint, with_key

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_an_endpoint_without_a_query_pins_no_key() -> None:
    assert split_endpoint("tcp://127.0.0.1:5555") == ("tcp://127.0.0.1:5555", None)


def test_the_key_after_the_first_question_mark_is_pinned_even_when_it_holds_one_itself() -> None:
    assert "?" in KEY
    assert split_endpoint(f"tcp://127.0.0.1:5555?key={KEY}") == ("tcp://127.0.0.1:5555", KEY)


@pytest.mark.parametrize("query", ["", "key=", "key=short", f"kez={KEY}", f"key={KEY}x", "port=1"])
def test_a_query_that_is_not_one_valid_key_is_refused(query: str) -> None:
    with pytest.raises(ValueError, match="key="):
        split_endpoint(f"tcp://h:1?{query}")


def test_libzmq_keys_are_keys_and_other_text_is_not() -> None:
    public, secret = zmq.curve_keypair()
    assert is_key(public.decode()) and is_key(secret.decode())
    assert not is_key(KEY[:-1]) and not is_key(KEY[:-1] + "~") and not is_key(None)


@given(st.text(alphabet=sorted(Z85_ALPHABET), min_size=40, max_size=40))
def test_with_key_and_split_endpoint_round_trip(key: str) -> None:
    endpoint = with_key("tcp://10.0.0.1:7000", key)
    assert split_endpoint(endpoint) == ("tcp://10.0.0.1:7000", key)
    assert address_of(endpoint) == "tcp://10.0.0.1:7000"


def test_an_empty_key_means_plain_text() -> None:
    assert with_key(f"tcp://h:1?key={KEY}", "") == "tcp://h:1"
