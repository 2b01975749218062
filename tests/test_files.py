"""Files written atomically: a failed or interrupted write leaves the old file and no temporary file."""
import errno

import pytest

from vdlearn.files import atomic_write


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt("interrupted"), RuntimeError("encoder failed")])
def test_an_interrupted_write_keeps_the_old_file(tmp_path, failure):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def write_half(f):
        f.write(b"ne")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(path, write_half)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    path.parent.mkdir()
    path.write_bytes(b"old")

    def disk_full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="disk is full.*unchanged"):
        atomic_write(path, disk_full)
    assert path.read_bytes() == b"old" and [p.name for p in path.parent.iterdir()] == ["out.bin"]


def test_the_new_file_gets_ordinary_permissions_and_keeps_the_old_ones(tmp_path):
    import os
    umask = os.umask(0o022)
    try:
        fresh = atomic_write(tmp_path / "fresh.bin", lambda f: f.write(b"x"))
        assert fresh.stat().st_mode & 0o777 == 0o644
        old = tmp_path / "old.bin"
        old.write_bytes(b"old")
        old.chmod(0o640)
        atomic_write(old, lambda f: f.write(b"new"))
        assert old.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)
