"""The spool's on-disk format: frames survive torn tails and damage; segments are mapped, cut, adopted once."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from flask_difylogstore.pipeline import spool as spool_module
from flask_difylogstore.pipeline.spool import Spool, decode_frames, delete, encode_frame, read_segment, trim


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


def test_zero_padding_of_an_allocated_segment_is_not_damage() -> None:
    data = encode_frame(b"one") + encode_frame(b"two") + bytes(4096)
    payloads, consumed, skipped = decode_frames(data, at_eof=True)
    assert payloads == [b"one", b"two"] and consumed == len(data) and skipped == 0
    torn = encode_frame(b"three")[:-2]  # killed in the middle of a copy: torn frame, then zeros
    payloads, _, skipped = decode_frames(encode_frame(b"one") + torn + bytes(100), at_eof=True)
    assert payloads == [b"one"] and skipped == len(torn.rstrip(b"\0"))


def test_segments_are_mapped_and_cut_to_size_when_sealed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 30, segment_bytes=64 * 1024)
    first, start = spool.append(encode_frame(b"a" * 1000), 1)
    assert first.map is not None and start == 0
    assert os.path.getsize(first.path) == first.capacity >= 64 * 1024  # allocated up front
    spool.append(encode_frame(b"b" * 70_000), 1)  # does not fit: a new segment of its size
    assert first.sealed and spool.take_sealed() == [first]
    trim([first])
    assert first.map is None and os.path.getsize(first.path) == first.size
    payloads, skipped = read_segment(first, first.size)
    assert payloads == [b"a" * 1000] and skipped == 0


def test_without_a_mapping_the_spool_writes_with_pwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "_allocate", lambda fd, size, prefault: (0, None))
    spool = Spool(tmp_path, max_bytes=1 << 30)
    seg, _ = spool.append(encode_frame(b"x"), 1)
    spool.append(encode_frame(b"y"), 1)
    assert seg.map is None and os.path.getsize(seg.path) == seg.size
    assert read_segment(seg, seg.size) == ([b"x", b"y"], 0)


def test_a_prepared_spare_becomes_the_next_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 30, segment_bytes=8192)
    first, _ = spool.append(encode_frame(b"a" * 9000), 1)
    assert spool.wants_spare()
    spare = spool.prepare_spare()
    assert spool.install_spare(spare) and not spool.wants_spare()
    second, _ = spool.append(encode_frame(b"b"), 1)
    assert second is spare and spool.spare is None and second.seq > first.seq
    third = spool.prepare_spare()
    assert spool.install_spare(third)
    leftover = spool.close()
    assert third in leftover  # an unused spare is deleted with the finished segments
    delete(leftover)
    assert not third.path.exists()


def test_a_nearly_full_disk_fails_the_append_not_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fstatvfs

    def nearly_full(fd: int) -> os.statvfs_result:
        stat = real(fd)
        return os.statvfs_result((stat.f_bsize, 4096, stat.f_blocks, 10, 10, *stat[5:]))

    monkeypatch.setattr(os, "fstatvfs", nearly_full)
    spool = Spool(tmp_path, max_bytes=1 << 30)
    with pytest.raises(OSError) as raised:
        spool.append(encode_frame(b"x"), 1)
    assert raised.value.errno == errno.ENOSPC
    assert spool.active is None and not list(tmp_path.glob("seg-*.log"))
