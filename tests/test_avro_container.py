"""The Avro framing check names what is wrong with a damaged Capture file and what is still readable."""
from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from capture_files import sequence, write_capture
from metering_analytics.sources.avro_container import CORRUPT, EMPTY, OK, scan_avro_container, scan_avro_file

T0 = datetime(2025, 3, 1, 10)
MESSAGES = [{"type": "Ping", "value": {"partitionId": "0", "reason": str(i)}} for i in range(7)]


def _file(tmp_path, records, **kwargs) -> bytes:
    return write_capture(tmp_path / "f.avro", records, **kwargs).read_bytes()


def test_an_intact_file_counts_its_blocks_and_records(tmp_path):
    scan = scan_avro_container(_file(tmp_path, sequence(T0, MESSAGES), block_bytes=1))
    assert scan == scan_avro_container(_file(tmp_path, sequence(T0, MESSAGES), block_bytes=1))
    assert (scan.status, scan.blocks, scan.records, scan.problem) == (OK, 7, 7, None)
    deflated = scan_avro_container(_file(tmp_path, sequence(T0, MESSAGES), codec="deflate"))
    assert (deflated.status, deflated.blocks, deflated.records) == (OK, 1, 7)


def test_the_real_capture_file_is_intact(samples_dir):
    data = (samples_dir / "Capture" / "p9--2022-12-09--16-50-12.avro").read_bytes()
    scan = scan_avro_container(data)
    assert scan.status == OK and scan.records > 0 and scan.problem is None


def test_empty_files(tmp_path):
    assert scan_avro_container(b"").status == EMPTY  # nothing to lose
    (tmp_path / "empty.avro").write_bytes(b"")
    assert scan_avro_file(str(tmp_path / "empty.avro")).status == EMPTY


def test_a_header_only_file_is_empty(tmp_path):
    assert scan_avro_container(_file(tmp_path, [])) == scan_avro_container(_file(tmp_path, []))
    assert scan_avro_container(_file(tmp_path, [])).status == EMPTY


def test_not_avro():
    scan = scan_avro_container(b"this is not avro at all")
    assert scan.status == CORRUPT and "not an Avro container" in scan.problem


def test_a_broken_sync_marker_stops_at_the_block_before(tmp_path):
    data = bytearray(_file(tmp_path, sequence(T0, MESSAGES), block_bytes=1))
    data[-5] ^= 0xFF  # inside the last block's sync marker
    scan = scan_avro_container(bytes(data))
    assert (scan.status, scan.blocks, scan.records) == (CORRUPT, 6, 6)
    assert "block 7" in scan.problem and "sync marker" in scan.problem


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_truncation_is_reported_unless_at_a_block_end_and_never_overcounts(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("t")
    whole = _file(folder, sequence(T0, MESSAGES), block_bytes=1)
    cut = data.draw(st.integers(1, len(whole) - 1))
    scan = scan_avro_container(whole[:cut])
    (folder / "cut.avro").write_bytes(whole[:cut])
    assert scan_avro_file(str(folder / "cut.avro")) == scan  # seeking past blocks sees what reading sees
    assert scan.records < 7 and scan.records == scan.blocks
    # Avro has no footer: a file cut exactly after a block's sync marker is a valid, shorter file.
    at_a_block_end = whole[cut - 16:cut] == whole[-16:]
    assert (scan.status == CORRUPT and scan.problem) or (at_a_block_end and scan.problem is None)
