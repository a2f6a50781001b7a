"""The spool's on-disk format: frames survive torn tails and damage; segments are adopted once."""

from __future__ import annotations

import os
from pathlib import Path

from flask_difylogstore.pipeline.spool import Spool, decode_frames, encode_frame, read_segment


def test_frames_round_trip_and_torn_tail_is_skipped() -> None:
    data = encode_frame(b"one") + encode_frame(b"two") + encode_frame(b"three")[:-2]
    payloads, consumed, skipped = decode_frames(data, at_eof=False)
    assert payloads == [b"one", b"two"] and skipped == 0 and consumed < len(data)
    payloads, consumed, skipped = decode_frames(data, at_eof=True)
    assert payloads == [b"one", b"two"] and consumed == len(data) and skipped > 0


def test_damaged_frame_is_skipped_and_reader_resynchronises() -> None:
    good = encode_frame(b"before")
    bad = bytearray(encode_frame(b"damaged payload"))
    bad[-3] ^= 0xFF
    data = good + bytes(bad) + b"\x00garbage" + encode_frame(b"after")
    payloads, _, skipped = decode_frames(data, at_eof=True)
    assert payloads == [b"before", b"after"]
    assert skipped == len(bad) + len(b"\x00garbage")


def test_live_segments_are_locked_and_dead_ones_adopted_once(tmp_path: Path) -> None:
    owner = Spool(tmp_path, max_bytes=1 << 30)
    owner.append(encode_frame(b"a") + encode_frame(b"b"), 2)
    other = Spool(tmp_path, max_bytes=1 << 30)
    other.prefix = "seg-other-"
    found, others = other.scan()
    assert found == [] and others > 0  # the owner holds the lock; its bytes count against the cap
    owner.forget()  # closing every descriptor releases the lock, as a dead process would
    adopted, _ = other.scan()
    assert len(adopted) == 1
    other.adopt(adopted, 0)
    third = Spool(tmp_path, max_bytes=1 << 30)
    third.prefix = "seg-third-"
    assert third.scan()[0] == []  # already adopted by `other`
    payloads, skipped = read_segment(adopted[0], adopted[0].size)
    assert payloads == [b"a", b"b"] and skipped == 0


def test_append_rotates_and_finished_segments_are_collected(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 30, segment_bytes=10)
    first, _ = spool.append(encode_frame(b"x" * 20), 1)
    second, _ = spool.append(encode_frame(b"y"), 1)
    assert first is not second and first.sealed and not second.sealed
    assert spool.ack(second) == []  # active segment is never deleted
    done = spool.ack(first)
    assert done == [first]
    assert first.path.exists()  # the caller unlinks
    assert sorted(os.listdir(tmp_path)) == sorted([first.path.name, second.path.name])
