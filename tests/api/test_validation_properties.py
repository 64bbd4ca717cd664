"""Property tests for request validation: whatever a client sends, the answer is a
precise INVALID_ARGUMENT or a value that keeps every promise — never another exception."""

import os
import unicodedata
from datetime import date
from pathlib import Path, PurePosixPath

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cofid.api.bridge import ApiError
from cofid.api.uploads import check_name
from cofid.api.validate import (
    calls_filter_key,
    calls_page_token,
    check_batch_directory,
    check_call_statuses,
    filter_key,
    page_token,
    read_calls_page_token,
    read_page_token,
)
from cofid.domain.model import CallStatus
from cofid.plans.batch import AUDIO_SUFFIXES
from cofid.service.intake import directory_problem

names = st.one_of(
    st.text(max_size=300),
    st.builds(lambda stem, ext: stem + ext, st.text(max_size=80),
              st.sampled_from(list(AUDIO_SUFFIXES) + [".WAV", ".txt", ""])),
    st.sampled_from(["..wav", "../a.wav", "a/../b.wav", ".hidden.wav", "a\\b.wav", "a\x00.wav",
                     "ok name.wav", "ünïcødé.flac", "x" * 300 + ".wav", "$(rm -rf).wav"]),
)


def invalid(exc: ApiError) -> bool:
    return exc.code == grpc.StatusCode.INVALID_ARGUMENT and bool(exc.message)


@given(names)
def test_an_accepted_upload_name_is_one_safe_audio_file_name(name):
    try:
        check_name(name, set())
    except ApiError as e:
        assert invalid(e)
        return
    assert PurePosixPath(name).name == name and "\\" not in name and "\x00" not in name
    assert ".." not in name and not name.startswith(".")
    assert len(name.encode()) <= 255
    assert PurePosixPath(name).suffix.lower() in AUDIO_SUFFIXES
    assert all(c.isalnum() or c in "._ -" or not c.isascii() for c in name)


@given(names)
def test_a_name_given_twice_is_refused(name):
    seen: set[str] = set()
    try:
        check_name(name, seen)
    except ApiError:
        return
    with pytest.raises(ApiError, match="given twice"):
        check_name(name, seen)


@given(st.text(max_size=60), st.lists(st.sampled_from(["/srv/batches", "/data/in/", "/"]), max_size=2))
def test_an_accepted_batch_directory_is_absolute_normalised_and_inside_a_root(d, roots):
    # StartBatch's two checks: the field as written, then the roots on resolved paths.
    try:
        check_batch_directory(d)
    except ApiError as e:
        assert invalid(e)
        return
    assert os.path.isabs(d) and os.path.normpath(d) == d
    problem = directory_problem(d, roots)
    if problem is not None:
        assert problem.startswith("directory ")
        return
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in d)
    if roots:
        target = Path(d).resolve()
        resolved_roots = [Path(r).resolve() for r in roots]
        assert target not in resolved_roots
        assert any(target.is_relative_to(r) for r in resolved_roots)


@given(st.dates(min_value=date(2000, 1, 1)), st.integers(1, 10**6), st.text(max_size=12),
       st.text(max_size=12))
def test_batch_page_tokens_round_trip_and_stay_tied_to_their_filters(d, n, a, b):
    key_a, key_b = filter_key(a, None, 10), filter_key(b, None, 10)
    token = page_token({"batch_date": d, "batch_number": n}, key_a)
    assert read_page_token(token, key_a) == (d, n)
    if key_a != key_b:
        with pytest.raises(ApiError, match="page_token was not issued"):
            read_page_token(token, key_b)


@given(st.text(max_size=200))
def test_any_page_token_is_read_or_refused_cleanly(token):
    for read, key in ((read_page_token, filter_key(None, None, 50)),
                      (read_calls_page_token, calls_filter_key(1, []))):
        try:
            read(token, key)
        except ApiError as e:
            assert invalid(e)


@given(st.integers(1, 2**40), st.integers(1, 10**6),
       st.lists(st.sampled_from([s.value for s in CallStatus]), max_size=4))
def test_call_page_tokens_round_trip(call_id, batch_id, statuses):
    key = calls_filter_key(batch_id, sorted(set(statuses)))
    assert read_calls_page_token(calls_page_token(call_id, key), key) == call_id
    with pytest.raises(ApiError):
        read_calls_page_token(calls_page_token(call_id, key), calls_filter_key(batch_id + 1, []))


@given(st.lists(st.text(max_size=20), max_size=5))
def test_call_status_filters_accept_only_known_values(statuses):
    known = {s.value for s in CallStatus}
    try:
        out = check_call_statuses(statuses)
    except ApiError as e:
        assert invalid(e) and any(s not in known for s in statuses)
        return
    assert out == sorted(set(statuses)) and set(out) <= known
