"""callMetadata.csv / tradeMetadata.csv parsing: one test per rule, then round-trip and fuzz."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cofid.domain.csv_ingest import (
    CallMetaRow,
    CsvHeaderError,
    ParsedCsv,
    RowError,
    TradeRow,
    parse_call_metadata,
    parse_datetime,
    parse_trade_metadata,
)

CALL_HEADER = "audioName,clientCode,agentId,callStartTime,callEndTime"
TRADE_HEADER = "tradeId,clientCode,symbol,side,quantity,price,tradeTime"


def csv_bytes(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode()


def only_error(parsed: ParsedCsv) -> RowError:
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0]


# -- call metadata: the happy path and the header rules ------------------------------------


def test_call_rows_parse_with_typed_values() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "a.wav,CL01,AG7,2026-11-22T10:15:00,2026-11-22T10:21:30",
        "b.wav,CL02,AG7,2026-11-22 11:00:00,",
    )
    parsed = parse_call_metadata(data)
    assert parsed.errors == []
    assert parsed.rows == [
        CallMetaRow(
            "a.wav",
            "CL01",
            "AG7",
            datetime(2026, 11, 22, 10, 15),
            datetime(2026, 11, 22, 10, 21, 30),
            {},
        ),
        CallMetaRow("b.wav", "CL02", "AG7", datetime(2026, 11, 22, 11, 0), None, {}),
    ]


def test_bom_and_crlf_are_ignored() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes(
        CALL_HEADER, "a.wav,C,A,2026-11-22T10:15:00,", newline="\r\n"
    )
    parsed = parse_call_metadata(data)
    assert [row.audio_name for row in parsed.rows] == ["a.wav"]
    assert parsed.errors == []


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    header = CALL_HEADER.replace(",", delimiter)
    # The comma inside the agent id must not split the field when ';' or tab is the delimiter.
    agent = "Rao, K" if delimiter != "," else '"Rao, K"'
    row = delimiter.join(["a.wav", "C", agent, "2026-11-22T10:15:00", ""])
    parsed = parse_call_metadata(csv_bytes(header, row))
    assert parsed.errors == []
    assert parsed.rows[0].agent_id == "Rao, K"


def test_header_names_ignore_case_spaces_underscores_and_hyphens() -> None:
    header = " AUDIO_NAME ;client-code;Agent Id;callstarttime;CALL_END_TIME"
    parsed = parse_call_metadata(csv_bytes(header, "a.wav;C;A;2026-11-22T10:15:00;"))
    assert parsed.errors == []
    assert parsed.rows[0].audio_name == "a.wav"


def test_extra_columns_are_kept_under_their_written_names() -> None:
    header = "Campaign ," + CALL_HEADER + ",recorder_id"
    parsed = parse_call_metadata(csv_bytes(header, "Diwali, a.wav,C,A,2026-11-22T10:15:00,, r-9 "))
    assert parsed.rows[0].extra == {"Campaign": "Diwali", "recorder_id": "r-9"}


def test_blank_header_cells_from_a_trailing_delimiter_are_ignored() -> None:
    parsed = parse_call_metadata(csv_bytes(CALL_HEADER + ",,", "a.wav,C,A,2026-11-22T10:15:00,,,"))
    assert parsed.errors == []
    assert parsed.rows[0].extra == {}


@pytest.mark.parametrize(
    "dropped", ["audioName", "clientCode", "agentId", "callStartTime", "callEndTime"]
)
def test_missing_required_column_is_fatal_and_named(dropped: str) -> None:
    header = ",".join(name for name in CALL_HEADER.split(",") if name != dropped)
    with pytest.raises(CsvHeaderError) as caught:
        parse_call_metadata(csv_bytes(header, "x,y,z,w"))
    assert "callMetadata.csv" in str(caught.value)
    assert f"missing required columns: {dropped}" in str(caught.value)


def test_missing_trade_columns_are_all_named() -> None:
    with pytest.raises(
        CsvHeaderError, match=r"tradeMetadata\.csv is missing required columns: side, price"
    ):
        parse_trade_metadata(csv_bytes("tradeId,clientCode,symbol,quantity,tradeTime"))


@pytest.mark.parametrize(
    "header",
    [CALL_HEADER + ",audio_name", CALL_HEADER + ",note,NOTE"],
    ids=["required", "extra"],
)
def test_duplicated_column_is_fatal_and_named(header: str) -> None:
    with pytest.raises(CsvHeaderError, match="callMetadata.csv has duplicated columns") as caught:
        parse_call_metadata(csv_bytes(header))
    # Positions and the format's own header names only: no header cell is quoted.
    assert str(caught.value).endswith(("columns 1 and 6 (both audioName)", "columns 6 and 7"))
    assert "audio_name" not in str(caught.value) and "NOTE" not in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n" + csv_bytes(CALL_HEADER), b"  \r\n"])
def test_file_without_header_is_fatal(data: bytes) -> None:
    with pytest.raises(CsvHeaderError, match="no header line"):
        parse_call_metadata(data)


def test_non_utf8_is_fatal_and_says_so() -> None:
    data = csv_bytes(CALL_HEADER) + "é.wav,C,A,2026-11-22T10:15:00,\n".encode("latin-1")
    with pytest.raises(CsvHeaderError, match=r"not UTF-8 text: the byte at offset 55 "):
        parse_call_metadata(data)


def test_non_utf8_offset_counts_the_bom() -> None:
    with pytest.raises(CsvHeaderError, match=r"the byte at offset 5 "):
        parse_call_metadata(b"\xef\xbb\xbfab\xffcd")


def test_header_only_gives_no_rows() -> None:
    assert parse_call_metadata(csv_bytes(CALL_HEADER)) == ParsedCsv([], [])


# -- call metadata: row rules ------------------------------------------------------------------


def test_naive_times_are_in_the_default_zone_and_returned_as_utc() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "a.wav,C,A,2026-11-22T10:15:00,2026-11-22T10:20:00",
        "b.wav,C,A,2026-11-22T04:40:00Z,2026-11-22T10:20:00+05:30",
    )
    parsed = parse_call_metadata(data, default_zone="Asia/Kolkata")
    assert parsed.errors == []
    a, b = parsed.rows
    assert (a.call_start, a.call_end) == (
        datetime(2026, 11, 22, 4, 45),
        datetime(2026, 11, 22, 4, 50),
    )
    # An explicit offset wins over the default zone.
    assert b.call_start == datetime(2026, 11, 22, 4, 40)
    assert b.call_end == datetime(2026, 11, 22, 4, 50)


def test_end_before_start_is_a_row_error_after_zone_conversion() -> None:
    # 10:20 IST is 04:50 UTC: before the 10:15 UTC start.
    data = csv_bytes(CALL_HEADER, "a.wav,C,A,2026-11-22T10:15:00Z,2026-11-22T10:20:00+05:30")
    parsed = parse_call_metadata(data)
    assert parsed.rows == []
    error = only_error(parsed)
    assert (error.line, error.column) == (2, "callEndTime")
    assert "is before callStartTime" in error.message


def test_bad_date_is_a_row_error_and_other_rows_still_parse() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "a.wav,C,A,2026-13-01,",
        "b.wav,C,A,2026-11-22T10:15:00,",
        "c.wav,C,A,2026-11-22T10:15:00,yesterday",
    )
    parsed = parse_call_metadata(data)
    assert [row.audio_name for row in parsed.rows] == ["b.wav"]
    assert parsed.errors == [
        RowError(
            2,
            "callStartTime",
            "2026-13-01",
            "callStartTime: '2026-13-01' is not an ISO 8601 date-time (no time of day)",
        ),
        RowError(
            4,
            "callEndTime",
            "yesterday",
            "callEndTime: 'yesterday' is not an ISO 8601 date-time",
        ),
    ]


def test_every_bad_value_of_a_row_is_reported() -> None:
    parsed = parse_call_metadata(csv_bytes(CALL_HEADER, " , ,A,2026-11-22T25:00:00,"))
    assert parsed.rows == []
    assert [(e.line, e.column) for e in parsed.errors] == [
        (2, "audioName"),
        (2, "clientCode"),
        (2, "callStartTime"),
    ]
    assert parsed.errors[0].message == "audioName: value is empty"
    assert (
        parsed.errors[2].message
        == "callStartTime: '2026-11-22T25:00:00' is not an ISO 8601 date-time"
    )


def test_values_are_stripped() -> None:
    parsed = parse_call_metadata(
        csv_bytes(CALL_HEADER, '  a.wav ,\t C1 ," A " , 2026-11-22T10:15:00 ,  ')
    )
    assert parsed.errors == []
    row = parsed.rows[0]
    assert (row.audio_name, row.client_code, row.agent_id, row.call_end) == (
        "a.wav",
        "C1",
        "A",
        None,
    )


def test_duplicate_audio_name_keeps_the_first() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "a.wav,C1,A,2026-11-22T10:15:00,",
        "b.wav,C1,A,2026-11-22T10:15:00,",
        "a.wav,C2,A,2026-11-22T11:15:00,",
    )
    parsed = parse_call_metadata(data)
    assert [(r.audio_name, r.client_code) for r in parsed.rows] == [
        ("a.wav", "C1"),
        ("b.wav", "C1"),
    ]
    assert only_error(parsed) == RowError(
        4, "audioName", "a.wav", "duplicate audioName 'a.wav', first on line 2"
    )


def test_a_rejected_row_claims_no_key() -> None:
    data = csv_bytes(CALL_HEADER, "a.wav,C1,A,bad,", "a.wav,C2,A,2026-11-22T11:15:00,")
    parsed = parse_call_metadata(data)
    assert [r.client_code for r in parsed.rows] == ["C2"]
    assert only_error(parsed).column == "callStartTime"


def test_audio_names_are_case_sensitive() -> None:
    data = csv_bytes(
        CALL_HEADER, "a.wav,C,A,2026-11-22T10:15:00,", "A.wav,C,A,2026-11-22T10:15:00,"
    )
    parsed = parse_call_metadata(data, known_audio=["a.wav", " A.wav "])
    assert [r.audio_name for r in parsed.rows] == ["a.wav", "A.wav"]
    assert parsed.errors == []


def test_unknown_audio_is_a_row_error() -> None:
    data = csv_bytes(
        CALL_HEADER, "a.wav,C,A,2026-11-22T10:15:00,", "ghost.wav,C,A,2026-11-22T10:15:00,"
    )
    parsed = parse_call_metadata(data, known_audio={"a.wav", "A.WAV"})
    assert [r.audio_name for r in parsed.rows] == ["a.wav"]
    assert only_error(parsed) == RowError(
        3, "audioName", "ghost.wav", "audioName 'ghost.wav' is not a file of this batch"
    )


def test_rows_with_the_wrong_number_of_fields_are_row_errors() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "a.wav,C,A,2026-11-22T10:15:00",
        "b.wav,C,A,2026-11-22T10:15:00,,surplus",
        "c.wav,C,A,2026-11-22T10:15:00,, ,",
    )
    parsed = parse_call_metadata(data)
    assert [r.audio_name for r in parsed.rows] == ["c.wav"]  # blank trailing fields are fine
    assert parsed.errors == [
        RowError(2, None, None, "row has 4 fields, the header has 5"),
        RowError(3, None, None, "row has 6 fields, the header has 5"),
    ]


def test_line_numbers_are_physical_lines_with_blank_lines_and_quoted_breaks() -> None:
    data = csv_bytes(
        CALL_HEADER,
        "",
        '"multi',
        'line.wav",C,A,2026-11-22T10:15:00,',
        ",,,,",
        "bad.wav,C,A,never,",
    )
    parsed = parse_call_metadata(data)
    assert [r.audio_name for r in parsed.rows] == ["multi\nline.wav"]
    assert only_error(parsed).line == 6


def test_lines_of_a_megabyte_and_more_parse_and_the_limit_is_restored() -> None:
    before = csv.field_size_limit()
    huge = "x" * 1_500_000
    data = csv_bytes(CALL_HEADER + ",notes", f"a.wav,C,A,2026-11-22T10:15:00,,{huge}")
    parsed = parse_call_metadata(data)
    assert parsed.errors == []
    assert parsed.rows[0].extra["notes"] == huge
    assert csv.field_size_limit() == before
    with pytest.raises(CsvHeaderError):
        parse_call_metadata(csv_bytes("audioName", huge))
    assert csv.field_size_limit() == before


def test_megabyte_error_messages_stay_short() -> None:
    huge = "7" * 1_200_000
    parsed = parse_call_metadata(csv_bytes(CALL_HEADER, f"a.wav,C,A,{huge},"))
    error = only_error(parsed)
    assert error.value == huge
    assert len(error.message) < 200
    assert "1200000 chars" in error.message


def test_parses_in_threads_at_once_keep_the_raised_limit() -> None:
    # The field size limit is process-wide; one thread finishing must not lower it under another.
    before = csv.field_size_limit()
    data = csv_bytes(CALL_HEADER + ",notes", f"a.wav,C,A,2026-11-22T10:15:00,,{'y' * 400_000}")
    barrier = threading.Barrier(6)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            try:
                results.append(len(parse_call_metadata(data).rows))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 30
    assert csv.field_size_limit() == before


# -- trade metadata -----------------------------------------------------------------------------


def test_trade_rows_parse_with_typed_values() -> None:
    data = csv_bytes(
        TRADE_HEADER + ",exchange",
        "T1,CL01,INFY,buy,100,1523.45,2026-11-22T10:16:00+05:30,NSE",
        "T2,CL01,TCS,S,0.5,0,2026-11-22 04:50:00Z,BSE",
    )
    parsed = parse_trade_metadata(data)
    assert parsed.errors == []
    assert parsed.rows == [
        TradeRow(
            "T1",
            "CL01",
            "INFY",
            "BUY",
            Decimal("100"),
            Decimal("1523.45"),
            datetime(2026, 11, 22, 4, 46),
            {"exchange": "NSE"},
        ),
        TradeRow(
            "T2",
            "CL01",
            "TCS",
            "SELL",
            Decimal("0.5"),
            Decimal("0"),
            datetime(2026, 11, 22, 4, 50),
            {"exchange": "BSE"},
        ),
    ]
    assert str(parsed.rows[0].price) == "1523.45"  # exact, no float on the way


@pytest.mark.parametrize(
    ("written", "side"), [("BUY", "BUY"), ("b", "BUY"), (" Sell ", "SELL"), ("s", "SELL")]
)
def test_side_spellings(written: str, side: str) -> None:
    parsed = parse_trade_metadata(
        csv_bytes(TRADE_HEADER, f"T1,C,X,{written},1,1,2026-11-22T10:00:00")
    )
    assert parsed.rows[0].side == side


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("side", "HOLD", "side: 'HOLD' is not BUY or SELL"),
        ("side", "\u017f", "is not BUY or SELL"),  # long s: upper() is 'S'
        ("quantity", '"1,000"', "quantity: '1,000' contains ','"),
        ("quantity", "0", "quantity: '0' must be greater than 0"),
        ("quantity", "-3", "quantity: '-3' must be greater than 0"),
        ("quantity", "1e3", "quantity: '1e3' is not a plain decimal number"),
        ("quantity", "NaN", "is not a plain decimal number"),
        ("quantity", "1_000", "is not a plain decimal number"),
        ("quantity", "\u0661\u0662", "is not a plain decimal number"),  # Arabic-Indic digits
        ("price", '"12,50"', "price: '12,50' contains ','"),
        ("price", "-0.01", "price: '-0.01' must not be negative"),
        ("price", "Infinity", "is not a plain decimal number"),
        (
            "tradeTime",
            "2026-11-22",
            "tradeTime: '2026-11-22' is not an ISO 8601 date-time (no time of day)",
        ),
        ("tradeId", "", "tradeId: value is empty"),
        ("symbol", "  ", "symbol: value is empty"),
    ],
)
def test_bad_trade_values_are_row_errors(column: str, value: str, fragment: str) -> None:
    good = {
        "tradeId": "T9",
        "clientCode": "C",
        "symbol": "X",
        "side": "B",
        "quantity": "1",
        "price": "1",
        "tradeTime": "2026-11-22T10:00:00",
    }
    good[column] = value
    data = csv_bytes(TRADE_HEADER, ",".join(good.values()), "T10,C,X,B,1,1,2026-11-22T10:00:00")
    parsed = parse_trade_metadata(data)
    assert [r.trade_id for r in parsed.rows] == ["T10"]
    error = only_error(parsed)
    assert (error.line, error.column) == (2, column)
    assert fragment in error.message


@pytest.mark.parametrize("number", ["+3", ".5", "10.", "007", "1523.4500"])
def test_plain_decimal_spellings(number: str) -> None:
    parsed = parse_trade_metadata(
        csv_bytes(TRADE_HEADER, f"T1,C,X,B,{number},{number},2026-11-22T10:00:00")
    )
    assert parsed.rows[0].quantity == Decimal(number)


def test_duplicate_trade_id_keeps_the_first() -> None:
    data = csv_bytes(
        TRADE_HEADER,
        "T1,C,X,B,1,1,2026-11-22T10:00:00",
        "T1,C,Y,S,2,2,2026-11-22T10:00:00",
    )
    parsed = parse_trade_metadata(data)
    assert [r.symbol for r in parsed.rows] == ["X"]
    assert only_error(parsed).message == "duplicate tradeId 'T1', first on line 2"


# -- parse_datetime ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-11-22T10:15:00", "UTC", datetime(2026, 11, 22, 10, 15)),
        ("2026-11-22 10:15:00", "Asia/Kolkata", datetime(2026, 11, 22, 4, 45)),
        ("2026-11-22T10:15:00Z", "Asia/Kolkata", datetime(2026, 11, 22, 10, 15)),
        ("2026-11-22T10:15:00+05:30", "UTC", datetime(2026, 11, 22, 4, 45)),
        ("2026-11-22T10:15:00.250-03:00", "UTC", datetime(2026, 11, 22, 13, 15, 0, 250000)),
        ("2026-11-22T10:15", "UTC", datetime(2026, 11, 22, 10, 15)),
        # New York: EDT (-4) in July, EST (-5) in November.
        ("2026-07-01T09:00:00", "America/New_York", datetime(2026, 7, 1, 13, 0)),
        ("2026-11-22T09:00:00", "America/New_York", datetime(2026, 11, 22, 14, 0)),
    ],
)
def test_parse_datetime(value: str, zone: str, expected: datetime) -> None:
    result = parse_datetime(value, zone)
    assert result == expected
    assert result.tzinfo is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-13-01T00:00:00", "'2026-13-01T00:00:00' is not an ISO 8601 date-time"),
        ("22/11/2026 10:15", "is not an ISO 8601 date-time"),
        ("2026-11-22", "(no time of day)"),
        ("20261122T101500", "is not an ISO 8601 date-time"),  # basic form: not accepted
        ("2026-11-22x10:15", "is not an ISO 8601 date-time"),
        ("", "(no time of day)"),
        ("0001-01-01T00:00:00+05:30", "out of the representable range"),
    ],
)
def test_parse_datetime_errors(value: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_datetime(value, "UTC")
    assert fragment in str(caught.value)


def test_unknown_zone_is_a_value_error_not_a_header_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'") as caught:
        parse_call_metadata(csv_bytes(CALL_HEADER), default_zone="Mars/Olympus")
    assert not isinstance(caught.value, CsvHeaderError)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_datetime("2026-11-22T10:15:00", "../etc/passwd")


# -- properties ---------------------------------------------------------------------------------

ZONES = ["UTC", "Asia/Kolkata", "America/New_York"]
OFFSET_ZONES = [UTC, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-3, minutes=-30))]
cell_text = (
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).map(str.strip).filter(bool)
)
extra_text = st.text(st.characters(codec="utf-8"), max_size=12).map(str.strip)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@st.composite
def written_time(draw: st.DrawFn, default_zone: str) -> tuple[str, datetime]:
    """A date-time as a CSV might carry it, and the naive UTC it stands for."""
    moment = draw(instants)
    sep = draw(st.sampled_from(["T", " "]))
    if draw(st.booleans()):
        aware = moment.replace(tzinfo=draw(st.sampled_from(OFFSET_ZONES)))
        text = aware.isoformat(sep=sep)
        if text.endswith("+00:00") and draw(st.booleans()):
            text = text[: -len("+00:00")] + "Z"
    else:
        aware = moment.replace(tzinfo=ZoneInfo(default_zone))
        text = moment.isoformat(sep=sep)
    return text, aware.astimezone(UTC).replace(tzinfo=None)


def header_spelling(name: str) -> st.SearchStrategy[str]:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return st.sampled_from([name, name.upper(), name.lower(), snake, f" {name} ", snake.upper()])


@st.composite
def call_files(draw: st.DrawFn) -> tuple[bytes, str, list[CallMetaRow]]:
    zone = draw(st.sampled_from(ZONES))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    required = ["audioName", "clientCode", "agentId", "callStartTime", "callEndTime"]
    extras = draw(st.lists(st.sampled_from(["note", "Campaign", "recorder id"]), unique=True))
    columns = draw(st.permutations(required + extras))
    names = draw(st.lists(cell_text, unique=True, max_size=8))
    expected, records = [], []
    for name in names:
        start_text, start = draw(written_time(zone))
        if draw(st.booleans()):
            end_text, end = "", None
        else:
            end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)))
            end_zone = draw(st.sampled_from(OFFSET_ZONES))
            end_text = end.replace(tzinfo=UTC).astimezone(end_zone).isoformat()
        extra = {column: draw(extra_text) for column in extras}
        values = {
            "audioName": name,
            "clientCode": draw(cell_text),
            "agentId": draw(cell_text),
            "callStartTime": start_text,
            "callEndTime": end_text,
            **extra,
        }
        records.append([values[column] for column in columns])
        expected.append(
            CallMetaRow(name, values["clientCode"], values["agentId"], start, end, extra)
        )
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([draw(header_spelling(c)) if c in required else c for c in columns])
    writer.writerows(records)
    return out.getvalue().encode(), zone, expected


@st.composite
def trade_files(draw: st.DrawFn) -> tuple[bytes, str, list[TradeRow]]:
    zone = draw(st.sampled_from(ZONES))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    required = ["tradeId", "clientCode", "symbol", "side", "quantity", "price", "tradeTime"]
    columns = draw(st.permutations(required + ["exchange"]))
    ids = draw(st.lists(cell_text, unique=True, max_size=8))
    expected, records = [], []
    for trade_id in ids:
        side_written = draw(st.sampled_from(["BUY", "buy", "B", "s", "Sell"]))
        quantity = draw(st.decimals(min_value=Decimal("0.0001"), max_value=10**9, places=4))
        price = draw(st.decimals(min_value=0, max_value=10**7, places=2))
        time_text, when = draw(written_time(zone))
        values = {
            "tradeId": trade_id,
            "clientCode": draw(cell_text),
            "symbol": draw(cell_text),
            "side": side_written,
            "quantity": format(quantity, "f"),
            "price": format(price, "f"),
            "tradeTime": time_text,
            "exchange": draw(extra_text),
        }
        records.append([values[column] for column in columns])
        side = "BUY" if side_written.upper().startswith("B") else "SELL"
        expected.append(
            TradeRow(
                trade_id,
                values["clientCode"],
                values["symbol"],
                side,
                quantity,
                price,
                when,
                {"exchange": values["exchange"]},
            )
        )
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([draw(header_spelling(c)) if c in required else c for c in columns])
    writer.writerows(records)
    return out.getvalue().encode(), zone, expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(call_files())
def test_valid_call_rows_round_trip(case: tuple[bytes, str, list[CallMetaRow]]) -> None:
    data, zone, expected = case
    parsed = parse_call_metadata(data, default_zone=zone)
    assert parsed.errors == []
    assert parsed.rows == expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(trade_files())
def test_valid_trade_rows_round_trip(case: tuple[bytes, str, list[TradeRow]]) -> None:
    data, zone, expected = case
    parsed = parse_trade_metadata(data, default_zone=zone)
    assert parsed.errors == []
    assert parsed.rows == expected


def parse_only_as_allowed(parse, data: bytes) -> None:
    try:
        parsed = parse(data)
    except CsvHeaderError:
        return
    assert isinstance(parsed, ParsedCsv)
    assert all(isinstance(e, RowError) and e.line >= 2 for e in parsed.errors)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_garbage_bytes_raise_only_header_errors(data: bytes) -> None:
    parse_only_as_allowed(parse_call_metadata, data)
    parse_only_as_allowed(parse_trade_metadata, data)


garbage_text = st.text(
    st.sampled_from(list(',;\t"\r\n xZ:-+.T0123456789é\x00\u2028')), max_size=300
)


@settings(max_examples=300)
@given(garbage_text)
def test_garbage_rows_under_a_valid_header_give_row_errors(body: str) -> None:
    parse_only_as_allowed(parse_call_metadata, (CALL_HEADER + "\n" + body).encode())
    parse_only_as_allowed(parse_trade_metadata, (TRADE_HEADER + "\n" + body).encode())
    parse_only_as_allowed(parse_call_metadata, (body + "\n" + CALL_HEADER).encode())
