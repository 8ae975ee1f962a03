"""SegmentLog: append-only segment files of CRC-checked records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from usertide.log.segments import HEADER, SUFFIX, LogCorrupted, Record, SegmentLog


def items(*payloads: bytes, kind: int = 1) -> list[tuple[int, bytes]]:
    return [(kind, p) for p in payloads]


def firsts(directory: Path) -> list[int]:
    """The first offsets of the segment files on disk, in order."""
    return sorted(int(p.name[: -len(SUFFIX)]) for p in directory.glob(f"*{SUFFIX}"))


def seg(directory: Path, first: int) -> Path:
    return directory / f"{first:020d}{SUFFIX}"


def offsets(records: Iterator[Record] | list[Record]) -> list[int]:
    return [r.offset for r in records]


def flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "log"


# -- appending and reading -------------------------------------------------------------


def test_round_trip_offsets_from_one(directory: Path) -> None:
    log = SegmentLog(directory)
    try:
        assert log.last_offset == 0
        assert log.append([(1, b"a"), (2, b"bb"), (1, b"")]) == 1
        assert log.append([(2, b"\x00" * 1000)]) == 4
        assert log.last_offset == 4
        assert list(log.read(0)) == [
            Record(1, 1, b"a"),
            Record(2, 2, b"bb"),
            Record(3, 1, b""),
            Record(4, 2, b"\x00" * 1000),
        ]
        assert offsets(log.read(2)) == [3, 4]
        assert list(log.read(4)) == []
        # An empty group writes nothing and returns the next offset.
        assert log.append([]) == 5
        assert log.last_offset == 4
        assert log.append(items(b"e")) == 5
        assert firsts(directory) == [1]
    finally:
        log.close()


def test_records_are_laid_out_back_to_back(directory: Path) -> None:
    log = SegmentLog(directory)
    try:
        log.append(items(b"abc", b"de"))
    finally:
        log.close()
    assert seg(directory, 1).stat().st_size == 2 * HEADER.size + 5


def test_start_after_sets_the_first_offset(directory: Path) -> None:
    log = SegmentLog(directory, start_after=41)
    try:
        assert log.last_offset == 41
        assert log.append(items(b"a", b"b")) == 42
        assert offsets(log.read(0)) == [42, 43]
        assert offsets(log.read(42)) == [43]
        assert firsts(directory) == [42]
    finally:
        log.close()


def test_reopen_continues_offsets_in_the_same_segment(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b", b"c"))
    log.close()

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 3
        assert log.append(items(b"d")) == 4
        assert [r.payload for r in log.read(0)] == [b"a", b"b", b"c", b"d"]
        assert firsts(directory) == [1]
        assert log.segments == 1
    finally:
        log.close()

    # The log's own offsets win over a smaller start_after.
    log = SegmentLog(directory, start_after=2)
    try:
        assert log.last_offset == 4
        assert log.append(items(b"e")) == 5
        assert offsets(log.read(0)) == [1, 2, 3, 4, 5]
    finally:
        log.close()


# -- torn tails ------------------------------------------------------------------------


def _tear_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-3])


def _tear_header_only(path: Path) -> None:
    # Cut inside the last record's header.
    data = path.read_bytes()
    last_record = HEADER.size + len(b"ccc")
    path.write_bytes(data[: -last_record + 5])


def _tear_flip_payload(path: Path) -> None:
    flip_byte(path, path.stat().st_size - 1)


def _tear_flip_crc(path: Path) -> None:
    last_record = HEADER.size + len(b"ccc")
    flip_byte(path, path.stat().st_size - last_record + 4)  # inside the CRC field


@pytest.mark.parametrize(
    "tear",
    [_tear_truncate, _tear_header_only, _tear_flip_payload, _tear_flip_crc],
    ids=["truncated", "cut-in-header", "flipped-payload", "flipped-crc"],
)
def test_torn_last_record_is_cut_off_on_reopen(
    directory: Path, tear: Callable[[Path], None]
) -> None:
    log = SegmentLog(directory)
    log.append(items(b"aaa", b"bbb"))
    log.append(items(b"ccc"))
    log.close()
    path = seg(directory, 1)
    tear(path)

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 2
        assert path.stat().st_size == 2 * (HEADER.size + 3)  # the torn bytes are gone
        assert [r.payload for r in log.read(0)] == [b"aaa", b"bbb"]
        assert log.append(items(b"new")) == 3  # the torn record's offset is reused
        assert [r.payload for r in log.read(0)] == [b"aaa", b"bbb", b"new"]
    finally:
        log.close()

    # What was appended after the cut is readable after yet another reopen.
    log = SegmentLog(directory)
    try:
        assert log.last_offset == 3
        assert [r.payload for r in log.read(0)] == [b"aaa", b"bbb", b"new"]
    finally:
        log.close()


@pytest.mark.parametrize(
    "garbage",
    [b"\x01\x02\x03", b"\xff" * (HEADER.size + 40), HEADER.pack(4, 12345, 4, 1) + b"oops"],
    ids=["shorter-than-header", "huge-length", "bad-crc"],
)
def test_garbage_after_the_last_record_is_cut_off(directory: Path, garbage: bytes) -> None:
    log = SegmentLog(directory)
    log.append(items(b"aaa", b"bbb", b"ccc"))
    log.close()
    path = seg(directory, 1)
    clean_size = path.stat().st_size
    with path.open("ab") as f:
        f.write(garbage)

    log = SegmentLog(directory)
    try:
        assert path.stat().st_size == clean_size
        assert log.last_offset == 3
        assert log.append(items(b"ddd")) == 4
    finally:
        log.close()
    log = SegmentLog(directory)
    try:
        assert [r.payload for r in log.read(0)] == [b"aaa", b"bbb", b"ccc", b"ddd"]
    finally:
        log.close()


def test_torn_first_record_of_a_rolled_segment_removes_the_segment(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b"))
    log.roll()
    log.append(items(b"ccc"))
    log.close()
    tail = seg(directory, 3)
    tail.write_bytes(tail.read_bytes()[:-1])

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 2
        assert log.append(items(b"again")) == 3
        assert [r.payload for r in log.read(0)] == [b"a", b"b", b"again"]
        assert firsts(directory) == [1, 3]
    finally:
        log.close()


def test_torn_only_record_of_the_only_segment(directory: Path) -> None:
    log = SegmentLog(directory, start_after=9)
    log.append(items(b"abc"))
    log.close()
    path = seg(directory, 10)
    path.write_bytes(path.read_bytes()[:-1])

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 9
        assert log.append(items(b"x")) == 10
        assert list(log.read(0)) == [Record(10, 1, b"x")]
    finally:
        log.close()


# -- empty tail segments ---------------------------------------------------------------


def test_empty_tail_segment_from_a_roll_is_removed_on_reopen(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b", b"c"))
    log.roll()
    log.close()
    assert firsts(directory) == [1, 4]
    assert seg(directory, 4).stat().st_size == 0

    # start_after beyond it shows the empty file was removed, not reused.
    log = SegmentLog(directory, start_after=10)
    try:
        assert firsts(directory) == [1, 11]
        assert not seg(directory, 4).exists()
        assert log.last_offset == 10
        assert log.append(items(b"k")) == 11
        assert offsets(log.read(10)) == [11]
    finally:
        log.close()


def test_empty_tail_segment_is_replaced_by_one_at_the_same_offset(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b", b"c"))
    log.roll()
    log.close()

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 3
        assert log.segments == 2
        assert log.append(items(b"d")) == 4
        assert firsts(directory) == [1, 4]
        assert offsets(log.read(0)) == [1, 2, 3, 4]
    finally:
        log.close()


def test_a_log_opened_and_closed_without_writes(directory: Path) -> None:
    SegmentLog(directory).close()
    log = SegmentLog(directory)
    try:
        assert log.last_offset == 0
        assert log.segments == 1
        assert log.append(items(b"a")) == 1
        assert firsts(directory) == [1]
    finally:
        log.close()


# -- rolling, rotation and dropping ----------------------------------------------------


def test_roll_and_drop_through_delete_only_fully_covered_closed_segments(
    directory: Path,
) -> None:
    log = SegmentLog(directory)
    try:
        log.append(items(b"1", b"2", b"3"))
        log.roll()
        log.append(items(b"4", b"5"))
        log.roll()
        log.append(items(b"6", b"7"))
        assert firsts(directory) == [1, 4, 6]
        assert log.segments == 3

        assert log.drop_through(0) == 0
        assert log.drop_through(2) == 0  # segment 1 still holds offset 3
        assert firsts(directory) == [1, 4, 6]
        assert log.drop_through(3) == 1
        assert firsts(directory) == [4, 6]
        assert offsets(log.read(0)) == [4, 5, 6, 7]

        # The active segment is never dropped, even when everything in it is loaded.
        assert log.drop_through(100) == 1
        assert firsts(directory) == [6]
        assert log.segments == 1
        assert log.drop_through(100) == 0
        assert firsts(directory) == [6]

        assert log.append(items(b"8")) == 8
        assert offsets(log.read(0)) == [6, 7, 8]

        # A roll closes the active segment; then it can go, and the new one stays.
        log.roll()
        assert firsts(directory) == [6, 9]
        assert log.drop_through(8) == 1
        assert firsts(directory) == [9]
        assert log.append(items(b"9")) == 9
        assert offsets(log.read(0)) == [9]
    finally:
        log.close()


def test_roll_without_writes_is_a_no_op(directory: Path) -> None:
    log = SegmentLog(directory)
    try:
        log.roll()
        log.roll()
        assert firsts(directory) == [1]
        log.append(items(b"a"))
        log.roll()
        log.roll()
        assert firsts(directory) == [1, 2]
        assert log.segments == 2
    finally:
        log.close()


def test_rotation_by_segment_bytes(directory: Path) -> None:
    record = HEADER.size + 10
    log = SegmentLog(directory, segment_bytes=3 * record)
    try:
        for i in range(7):
            assert log.append(items(b"%010d" % i)) == i + 1
        assert firsts(directory) == [1, 4, 7]
        for first in (1, 4):
            assert seg(directory, first).stat().st_size == 3 * record

        # A group is never split: it goes whole into the current segment.
        assert log.append(items(*(b"%010d" % i for i in range(7, 12)))) == 8
        assert firsts(directory) == [1, 4, 7, 13]
        assert seg(directory, 7).stat().st_size == 6 * record
        assert seg(directory, 13).stat().st_size == 0
        assert offsets(log.read(0)) == list(range(1, 13))
    finally:
        log.close()


@pytest.mark.parametrize("after", [0, 1, 3, 4, 5, 8, 9, 10, 11])
def test_read_after_across_several_segments(directory: Path, after: int) -> None:
    record = HEADER.size + 1
    log = SegmentLog(directory, segment_bytes=2 * record)
    try:
        for i in range(1, 11):
            log.append(items(bytes([i])))
        assert firsts(directory) == [1, 3, 5, 7, 9, 11]
        got = list(log.read(after))
        assert offsets(got) == list(range(after + 1, 11))
        assert [r.payload for r in got] == [bytes([o]) for o in range(after + 1, 11)]
    finally:
        log.close()


def test_read_across_segments_after_reopen(directory: Path) -> None:
    log = SegmentLog(directory, segment_bytes=HEADER.size + 1)
    for i in range(1, 6):
        log.append(items(bytes([i])))
    log.close()
    log = SegmentLog(directory, segment_bytes=HEADER.size + 1)
    try:
        assert log.last_offset == 5
        assert offsets(log.read(2)) == [3, 4, 5]
        assert log.append(items(b"x")) == 6
        assert offsets(log.read(0)) == [1, 2, 3, 4, 5, 6]
    finally:
        log.close()


def test_read_skips_segments_dropped_while_reading(directory: Path) -> None:
    log = SegmentLog(directory, segment_bytes=HEADER.size + 1)
    try:
        for i in range(1, 5):
            log.append(items(bytes([i])))
        reader = log.read(0)
        assert next(reader).offset == 1
        log.drop_through(3)
        assert offsets(reader) == [4]
    finally:
        log.close()


# -- corruption ------------------------------------------------------------------------


def _two_segments(directory: Path) -> Path:
    log = SegmentLog(directory)
    log.append(items(b"aaa", b"bbb", b"ccc"))
    log.roll()
    log.append(items(b"ddd", b"eee"))
    log.close()
    return seg(directory, 1)


@pytest.mark.parametrize(
    "position",
    [HEADER.size + 3 + HEADER.size, -1, 10],
    ids=["middle-record-payload", "last-record-payload", "first-record-offset"],
)
def test_corrupted_record_in_a_closed_segment_raises(directory: Path, position: int) -> None:
    closed = _two_segments(directory)
    flip_byte(closed, position % closed.stat().st_size)

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 5  # only the last segment is scanned on open
        with pytest.raises(LogCorrupted, match=closed.name):
            list(log.read(0))
        # Reading from beyond the damaged segment is fine.
        assert offsets(log.read(3)) == [4, 5]
    finally:
        log.close()


def test_truncated_closed_segment_raises(directory: Path) -> None:
    closed = _two_segments(directory)
    closed.write_bytes(closed.read_bytes()[:-2])
    log = SegmentLog(directory)
    try:
        with pytest.raises(LogCorrupted):
            list(log.read(1))
        assert closed.stat().st_size > 0  # never "repaired" like a torn tail
    finally:
        log.close()


def test_corruption_is_seen_by_an_open_log(directory: Path) -> None:
    log = SegmentLog(directory)
    try:
        log.append(items(b"aaa", b"bbb"))
        log.roll()
        log.append(items(b"ccc"))
        flip_byte(seg(directory, 1), 2 * HEADER.size + 3 + 1)
        with pytest.raises(LogCorrupted):
            list(log.read(0))
    finally:
        log.close()


# -- start_after beyond the log --------------------------------------------------------


def test_start_after_beyond_the_log_starts_a_new_segment(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b", b"c"))
    log.close()

    log = SegmentLog(directory, start_after=10)
    try:
        assert log.last_offset == 10
        assert firsts(directory) == [1, 11]
        assert log.segments == 2
        assert log.append(items(b"k", b"l")) == 11
        assert offsets(log.read(10)) == [11, 12]
        # The old segment is closed and can be dropped once the store holds it.
        assert log.drop_through(10) == 1
        assert firsts(directory) == [11]
    finally:
        log.close()

    log = SegmentLog(directory)
    try:
        assert log.last_offset == 12
        assert log.append(items(b"m")) == 13
        assert firsts(directory) == [11]
        assert [r.payload for r in log.read(0)] == [b"k", b"l", b"m"]
    finally:
        log.close()


def test_start_after_equal_to_the_log_reopens_the_tail(directory: Path) -> None:
    log = SegmentLog(directory)
    log.append(items(b"a", b"b", b"c"))
    log.close()
    log = SegmentLog(directory, start_after=3)
    try:
        assert log.append(items(b"d")) == 4
        assert firsts(directory) == [1]
    finally:
        log.close()


def test_fsync_off_still_round_trips(directory: Path) -> None:
    log = SegmentLog(directory, fsync=False, segment_bytes=HEADER.size + 1)
    for i in range(3):
        log.append(items(bytes([i])))
    log.close()
    log = SegmentLog(directory, fsync=False)
    try:
        assert offsets(log.read(0)) == [1, 2, 3]
    finally:
        log.close()


# -- a failed append -------------------------------------------------------------------


def test_a_failed_append_leaves_no_record_behind(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log = SegmentLog(directory)
    try:
        log.append(items(b"a"))
        with monkeypatch.context() as m:
            m.setattr("usertide.log.segments.os.fdatasync", failing_fdatasync)
            with pytest.raises(OSError):
                log.append(items(b"never acknowledged"))
        assert log.append(items(b"c")) == 2
        assert list(log.read(0)) == [Record(1, 1, b"a"), Record(2, 1, b"c")]
    finally:
        log.close()
